#!/usr/bin/env bash
# Regenerates every generated file (zz_generated.* and pkg/generated) with
# k8s.io/code-generator's kube_codegen.sh, at the version go.mod pins.
set -o errexit
set -o nounset
set -o pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "${ROOT}"

# kube_codegen.sh `go install`s the generators into $GOBIN: keep them in a
# repo-local, git-ignored folder rather than the user's GOPATH.
export GOBIN="${ROOT}/hack/bin"
mkdir -p "${GOBIN}"

# On a fresh machine the module may not be in the cache yet.
go mod download k8s.io/code-generator
CODEGEN_PKG="$(go list -m -f '{{.Dir}}' k8s.io/code-generator)"
# shellcheck disable=SC1091
source "${CODEGEN_PKG}/kube_codegen.sh"

THIS_PKG="github.com/flagpole-dev/flagpole"
BOILERPLATE="${ROOT}/hack/boilerplate.go.txt"

kube::codegen::gen_helpers \
    --boilerplate "${BOILERPLATE}" \
    "${ROOT}/pkg/apis"

kube::codegen::gen_openapi \
    --output-dir "${ROOT}/pkg/generated/openapi" \
    --output-pkg "${THIS_PKG}/pkg/generated/openapi" \
    --output-model-name-file "zz_generated.model_name.go" \
    --report-filename "${ROOT}/hack/api-violations.list" \
    --update-report \
    --boilerplate "${BOILERPLATE}" \
    "${ROOT}/pkg/apis"

# Apply configurations get Extract* functions only with a schema; dump it from
# the OpenAPI definitions generated just above.
schema="$(mktemp)"
trap 'rm -f "${schema}"' EXIT
go run ./hack/models-schema > "${schema}"

kube::codegen::gen_client \
    --with-watch \
    --with-applyconfig \
    --applyconfig-openapi-schema "${schema}" \
    --output-dir "${ROOT}/pkg/generated" \
    --output-pkg "${THIS_PKG}/pkg/generated" \
    --boilerplate "${BOILERPLATE}" \
    "${ROOT}/pkg/apis"
