#!/usr/bin/env bash
# The project's benchmark command:
#   hack/bench.sh [all|evaluation|crd|usage] [bench flags...]
# evaluation: Flagpole's evaluation paths (OFREP with a bearer token,
# flags/evaluate with a client certificate and with a bearer token; both
# servers keeping an audit log) against kube-apiserver v1.37.2's
# SelfSubjectReview.
# crd: CRDs on kube-apiserver (the OpenFeature Operator's FeatureFlag, the
# ratios' peer by default; a Flag CRD with Flagpole's schema; a minimal one)
# against Flagpole delegated and registered through an APIService, reached
# through kube-apiserver and direct; -shared-etcd puts Flagpole on
# kube-apiserver's etcd, -bearer makes every client use a ServiceAccount
# token: creates,
# gets, updates, LIST of 10,000 (JSON, protobuf), watch fan-out, memory growth
# for 10,000 objects, etcd writes per create; with -bearer, evaluation with
# the token too (flags/evaluate and OFREP direct against SelfSubjectReview).
# usage: what counting usage costs: OFREP throughput with counting on against
# off, the heap a flag's counts take, etcd writes per flush interval under
# no, light and full load.
# all (the default): evaluation, crd, then usage, in one run (about 13
# minutes on two cores); crd then quotes the evaluation's OFREP figure.
# Each prints progress and a markdown table, and rewrites its section of
# docs/benchmarks.md (which says how to read them).
# Bench flags (see _output/bench/bench -h) come after the bench's name, e.g.
#   hack/bench.sh crd -docs ''               # do not touch docs/benchmarks.md
#   hack/bench.sh crd -crd-rounds 2 -list-objects 2000 -watchers 100 -docs 
set -o errexit
set -o nounset
set -o pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "${ROOT}"

bench="${1:-all}"
shift || true
case "${bench}" in
    all) benches=(evaluation crd usage) ;;
    evaluation|crd|usage) benches=("${bench}") ;;
    *)
        echo "usage: hack/bench.sh [all|evaluation|crd|usage] [flags]" >&2
        exit 2
        ;;
esac

# etcd, kube-apiserver and kubectl (instant when up to date).
hack/build-tools.sh
OUT="_output/bench"
mkdir -p "${OUT}"
# A plain build, as shipped: no -race, which would slow the server several fold.
go build -o "${OUT}/flagpole-apiserver" ./cmd/flagpole-apiserver
# The bench runs as a built binary, not under go run, so that Ctrl-C reaches
# it directly and its clean-up stops every server it started.
go build -o "${OUT}/bench" ./test/bench
exec "${OUT}/bench" -tools-bin _output/tools/bin -flagpole-bin "${OUT}/flagpole-apiserver" \
    -out "${OUT}" "$@" "${benches[@]}"
