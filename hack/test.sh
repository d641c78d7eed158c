#!/usr/bin/env bash
# The project's test command (README, CI):
#   1. unit and integration tests, and the kubectl smoke test (go test ./...);
#   2. the e2e suite against a real control plane built by hack/build-tools.sh.
# Extra arguments go to both go test runs (e.g. -run TestKubectl -v).
# FLAGPOLE_SKIP_E2E=1 runs step 1 only.
set -o errexit
set -o nounset
set -o pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "${ROOT}"

if ! command -v kubectl >/dev/null 2>&1; then
    echo "kubectl is not on PATH: the kubectl smoke test (test/integration) needs it" >&2
    exit 1
fi

# -p 2: integration packages each start real servers; two at a time fit a 2-core machine.
go test -count=1 -p 2 "$@" ./...

if [[ "${FLAGPOLE_SKIP_E2E:-}" == "1" ]]; then
    echo "FLAGPOLE_SKIP_E2E=1: e2e suite skipped"
    exit 0
fi
hack/build-tools.sh
go test -tags e2e -count=1 -timeout 30m "$@" ./test/e2e/
