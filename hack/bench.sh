#!/usr/bin/env bash
# The project's benchmark command:
#   hack/bench.sh [evaluation] [bench flags...]
# evaluation (the default and only bench so far): Flagpole's evaluation paths
# (OFREP with a bearer token, flags/evaluate with a client certificate) against
# kube-apiserver v1.37.2's SelfSubjectReview, on this machine, in one run, over
# loopback. It prints progress and a markdown table, and rewrites the
# evaluation section of docs/benchmarks.md (which says how to read it).
# Bench flags (see go run ./test/bench -h) come after the bench's name, e.g.
#   hack/bench.sh evaluation -docs ''        # do not touch docs/benchmarks.md
set -o errexit
set -o nounset
set -o pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "${ROOT}"

bench="${1:-evaluation}"
shift || true
if [[ "${bench}" != "evaluation" ]]; then
    echo "usage: hack/bench.sh [evaluation] [flags]" >&2
    exit 2
fi

# etcd and kube-apiserver, the reference (instant when up to date).
hack/build-tools.sh
OUT="_output/bench"
mkdir -p "${OUT}"
# A plain build, as shipped: no -race, which would slow the server several fold.
go build -o "${OUT}/flagpole-apiserver" ./cmd/flagpole-apiserver
# The bench runs as a built binary, not under go run, so that Ctrl-C reaches
# it directly and its clean-up stops every server it started.
go build -o "${OUT}/bench" ./test/bench
exec "${OUT}/bench" -tools-bin _output/tools/bin -flagpole-bin "${OUT}/flagpole-apiserver" \
    -out "${OUT}" "$@" "${bench}"
