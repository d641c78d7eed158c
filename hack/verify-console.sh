#!/usr/bin/env bash
# Fails when the committed console assets (pkg/console/assets/dist) differ
# from what hack/build-console.sh builds from web/console now: a changed
# source, or a lockfile whose packages build differently.
set -o errexit
set -o nounset
set -o pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
out="$(mktemp -d)"
trap 'rm -rf "${out}"' EXIT
CONSOLE_OUT_DIR="${out}" "${ROOT}/hack/build-console.sh"
if ! diff -r "${out}" "${ROOT}/pkg/console/assets/dist"; then
    echo "pkg/console/assets/dist is out of date: run hack/build-console.sh and commit the result" >&2
    exit 1
fi
echo "Console assets are up to date."
