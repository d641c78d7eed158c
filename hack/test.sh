#!/usr/bin/env bash
# The project's test command (README, CI):
#   1. hack/build-tools.sh: kube-apiserver, kube-controller-manager, kubectl
#      v1.37.2 and etcd (nothing to do when they are up to date);
#   2. unit and integration tests, the kubectl smoke test and the hostile-input
#      corpus, with the race detector (go test -race ./...); the tests that
#      drive the pinned tools find them in FLAGPOLE_TOOLS_BIN (test/tools),
#      never on PATH, and fail when one is missing (outside this script they
#      skip instead); so do the hostile suite's disk cases, which mount file
#      systems of their own (root, losetup, mkfs.ext4: test/scratchfs);
#   3. kubectl-flagpole installed by krew from a local release archive
#      (hack/verify-krew.sh);
#   4. the e2e suite against a real control plane;
#   5. the real-node e2e (test/node): hack/node.sh up, the tests, hack/node.sh
#      down (which fails unless nothing of the node is left) -- when this
#      machine can run a node (root, cgroup v1, the packages or Debian's
#      archive); otherwise one line says why it is skipped. It runs beside
#      steps 2 to 4 (it waits on Pods most of its time; docs/testing.md has
#      what that saves), its output in _output/node-e2e.log, printed at the end;
#   6. the hostile suite (test/hostile), on an otherwise quiet machine.
# The browser tests (test/browser) need Debian's Chromium, the rollout
# guard tests Debian's Prometheus: hack/install-debian-tools.sh installs
# them when they are missing.
# Extra arguments go to the go test runs (e.g. -run TestKubectl -v).
# FLAGPOLE_SKIP_E2E=1 runs steps 1 to 3 and 6 only; FLAGPOLE_SKIP_NODE=1 skips
# step 5.
set -o errexit
set -o nounset
set -o pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "${ROOT}"

# The node's tools are a superset of the e2e's; when the node will run,
# build them once. helm (its own module) builds beside them.
tools_set=e2e
node_skip=""
if [[ "${FLAGPOLE_SKIP_E2E:-}" == 1 || "${FLAGPOLE_SKIP_NODE:-}" == 1 ]]; then
    node_skip="FLAGPOLE_SKIP_E2E or FLAGPOLE_SKIP_NODE is 1"
elif ! node_skip="$(hack/node.sh check 2>&1)"; then
    node_skip="${node_skip#node: }"
else
    node_skip=""
    tools_set=node
fi
mkdir -p _output
hack/build-tools.sh helm >_output/build-helm.log 2>&1 &
helm_pid=$!
hack/build-tools.sh "${tools_set}"
wait "${helm_pid}" || { cat _output/build-helm.log >&2; exit 1; }
cat _output/build-helm.log
hack/install-debian-tools.sh
export FLAGPOLE_TOOLS_BIN="${ROOT}/_output/tools/bin"
export FLAGPOLE_REQUIRE_PRIVILEGED_TESTS=1

node_pid=""
node_failed=0
# wait_node waits for the node's run (which ends with hack/node.sh down) and
# prints its log, or says why it was skipped.
wait_node() {
    local node_rc=0
    if [[ -n "${node_pid}" ]]; then
        wait "${node_pid}" || node_rc=$?
        echo "--- real-node e2e (_output/node-e2e.log)"
        cat _output/node-e2e.log
        node_pid=""
        if (( node_rc != 0 )); then
            echo "real-node e2e failed (exit ${node_rc})" >&2
            node_failed=${node_rc}
        fi
    elif [[ -n "${node_skip}" ]]; then
        echo "real-node e2e skipped: ${node_skip}"
        node_skip=""
    fi
}
# finish_node fails the script if the node's run failed; on any exit.
finish_node() {
    local rc=$?
    wait_node
    (( rc == 0 && node_failed != 0 )) && rc=${node_failed}
    exit "${rc}"
}
trap finish_node EXIT
if [[ -z "${node_skip}" ]]; then
    (
        node_rc=0
        hack/node.sh up && go test -tags node -count=1 -timeout 20m -v "$@" ./test/node/ || node_rc=$?
        # down runs whatever the tests did, and fails if the node left anything.
        hack/node.sh down || node_rc=1
        exit "${node_rc}"
    ) >_output/node-e2e.log 2>&1 &
    node_pid=$!
fi

# -race: data races fail the run where they happen (its cost is in
# docs/testing.md); the integration tests build the binaries they start with
# -race too.
# -p 2: integration packages each start real servers; two at a time fit a
# 2-core machine.
go test -race -count=1 -p 2 -timeout 20m "$@" ./...
# The memory bound of hostile evaluations is about the resident set, which
# only an uninstrumented binary shows (docs/evaluation.md).
go test -count=1 -run '^TestConcurrentHostileEvaluationsMemory$' "$@" ./pkg/evaluation/
# The image program is a module of its own (hack/image); the image must build
# reproducibly: the script builds it twice and compares the digests.
(cd hack/image && go test -count=1 ./...)
VERIFY_REPRODUCIBLE=1 hack/build-image.sh
hack/verify-krew.sh

if [[ "${FLAGPOLE_SKIP_E2E:-}" == "1" ]]; then
    echo "FLAGPOLE_SKIP_E2E=1: e2e suite skipped"
else
    go test -tags e2e -count=1 -timeout 30m "$@" ./test/e2e/
fi

# The hostile suite last, on a machine otherwise quiet: its goals are about
# a normal client's latency, the server's memory and its log while a peer
# attacks (docs/operations.md), which other tests running beside it would
# distort. Without -race: those are the figures of the server users run.
wait_node
go test -tags hostile -count=1 -timeout 15m "$@" ./test/hostile/
