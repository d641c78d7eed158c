#!/usr/bin/env bash
# The project's test command (README, CI): unit tests, integration tests
# against the real server on embedded etcd, and the kubectl smoke test.
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
