#!/usr/bin/env bash
# Fails when the committed generated code differs from what
# hack/update-codegen.sh produces now.
set -o errexit
set -o nounset
set -o pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "${ROOT}"

"${ROOT}/hack/update-codegen.sh"

# Everything the generators own: generated trees, zz_generated files, the
# protobuf IDL and code and the protobuf struct tags go-to-protobuf writes
# into types.go, the API violations report. Untracked generated files count
# as stale too. (update-codegen.sh has refused to run with any protoc but the
# one the committed protobuf code was made with: hack/install-protoc.sh.)
generated=(
    pkg/generated
    'pkg/apis/**/zz_generated*'
    'pkg/apis/**/generated.proto'
    'pkg/apis/**/generated.pb.go'
    'pkg/apis/**/types.go'
    hack/api-violations.list
)
changed="$(git status --porcelain -- "${generated[@]}")"
if [[ -n "${changed}" ]]; then
    echo "Generated code is out of date; run hack/update-codegen.sh and commit the result:" >&2
    echo "${changed}" >&2
    git --no-pager diff --stat -- "${generated[@]}" >&2
    exit 1
fi
echo "Generated code is up to date."
