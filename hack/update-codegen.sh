#!/usr/bin/env bash
# Regenerates every generated file (zz_generated.*, pkg/generated, and the
# protobuf files generated.proto and generated.pb.go with the protobuf struct
# tags of types.go) with k8s.io/code-generator's kube_codegen.sh and
# go-to-protobuf, at the version go.mod pins. Protobuf needs protoc
# 3.21.12: hack/install-protoc.sh installs Debian's protobuf-compiler when
# there is no such protoc.
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

# Protobuf first: it rewrites the protobuf struct tags of types.go, which
# the generators below read.
gen_protobuf() {
    local protoc
    protoc="$("${ROOT}/hack/install-protoc.sh")"
    # go-to-protobuf runs protoc, protoc-gen-gogo and goimports from PATH:
    # the versions go.mod pins (tool dependencies), and the protoc checked above.
    go install k8s.io/code-generator/cmd/go-to-protobuf \
        k8s.io/code-generator/cmd/go-to-protobuf/protoc-gen-gogo \
        golang.org/x/tools/cmd/goimports
    ln -sf "${protoc}" "${GOBIN}/protoc"

    # protoc finds imported .proto files by import path, and go-to-protobuf
    # writes its output under --output-dir by import path: both need a
    # GOPATH-shaped tree. Link this module and the ones whose .proto files
    # ours import (apimachinery; gogo.proto and descriptor.proto from gogo).
    local gopath apimachinery gogo
    gopath="$(mktemp -d)"
    go mod download k8s.io/apimachinery github.com/gogo/protobuf
    apimachinery="$(go list -m -f '{{.Dir}}' k8s.io/apimachinery)"
    gogo="$(go list -m -f '{{.Dir}}' github.com/gogo/protobuf)"
    mkdir -p "${gopath}/src/github.com/flagpole-dev" "${gopath}/src/k8s.io" "${gopath}/src/github.com/gogo"
    ln -s "${ROOT}" "${gopath}/src/${THIS_PKG}"
    ln -s "${apimachinery}" "${gopath}/src/k8s.io/apimachinery"
    ln -s "${gogo}" "${gopath}/src/github.com/gogo/protobuf"

    # Apimachinery packages are prefixed with "-": referenced, not generated.
    local rc=0
    PATH="${GOBIN}:${PATH}" go-to-protobuf \
        --go-header-file "${BOILERPLATE}" \
        --output-dir "${gopath}/src" \
        --proto-import "${gopath}/src" \
        --proto-import "${gogo}/protobuf" \
        --apimachinery-packages "$(IFS=,; echo "${PROTO_APIMACHINERY_PKGS[*]}")" \
        --packages "$(IFS=,; echo "${PROTO_PKGS[*]}")" || rc=$?
    rm -rf "${gopath}"
    return "${rc}"
}

PROTO_APIMACHINERY_PKGS=(
    -k8s.io/apimachinery/pkg/util/intstr
    -k8s.io/apimachinery/pkg/api/resource
    -k8s.io/apimachinery/pkg/runtime/schema
    -k8s.io/apimachinery/pkg/runtime
    -k8s.io/apimachinery/pkg/apis/meta/v1
)
PROTO_PKGS=(
    "${THIS_PKG}/pkg/apis/flagpole/v1beta1"
)
gen_protobuf

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
    --prefers-protobuf \
    --with-applyconfig \
    --applyconfig-openapi-schema "${schema}" \
    --output-dir "${ROOT}/pkg/generated" \
    --output-pkg "${THIS_PKG}/pkg/generated" \
    --boilerplate "${BOILERPLATE}" \
    "${ROOT}/pkg/apis"
