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
# API violations report. Untracked generated files count as stale too.
changed="$(git status --porcelain -- pkg/generated 'pkg/apis/**/zz_generated*' hack/api-violations.list)"
if [[ -n "${changed}" ]]; then
    echo "Generated code is out of date; run hack/update-codegen.sh and commit the result:" >&2
    echo "${changed}" >&2
    git --no-pager diff --stat -- pkg/generated pkg/apis hack/api-violations.list >&2
    exit 1
fi
echo "Generated code is up to date."
