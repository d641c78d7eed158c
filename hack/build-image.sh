#!/usr/bin/env bash
# Builds Flagpole's container image without a container daemon:
#   1. a static flagpole-apiserver (CGO_ENABLED=0, -trimpath, no VCS stamping,
#      version stamped with -ldflags from git);
#   2. an OCI image of it on an empty base (hack/image, go-containerregistry):
#      one layer, /flagpole-apiserver owned by 65532, User 65532:65532, no shell;
#   3. _output/image/oci (OCI image layout) and
#      _output/image/flagpole-apiserver.oci.tar (the same, as a tar archive).
# Every time stamp is the commit's time (SOURCE_DATE_EPOCH), so the same
# source gives the same digest. With VERIFY_REPRODUCIBLE=1 the script builds
# twice into separate directories and fails if the digests differ.
#
# Environment: GOARCH (default: the host's), IMAGE (default
# flagpole-apiserver:<version>), VERSION (default: git describe, else
# pkg/version.Base-dev), SOURCE_DATE_EPOCH (default: last commit's time).
# docs/install.md says how to load the archive into kind or push it.
set -o errexit
set -o nounset
set -o pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
OUT="${OUT:-${ROOT}/_output/image}"
cd "${ROOT}"

GOARCH="${GOARCH:-$(go env GOARCH)}"
commit="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
tree_state=clean
if [[ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]]; then
    tree_state=dirty
fi
if [[ -z "${VERSION:-}" ]]; then
    VERSION="$(git describe --tags --exact-match 2>/dev/null || true)"
    if [[ -z "${VERSION}" ]]; then
        base="$(sed -n 's/^const Base = "\(.*\)"$/\1/p' pkg/version/version.go)"
        VERSION="${base}-dev+${commit:0:12}"
        [[ "${tree_state}" == dirty ]] && VERSION+=".dirty"
    fi
fi
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}"
build_date="$(date -u -d "@${SOURCE_DATE_EPOCH}" +%Y-%m-%dT%H:%M:%SZ)"
IMAGE="${IMAGE:-flagpole-apiserver:${VERSION//+/_}}"

pkg=github.com/flagpole-dev/flagpole/pkg/version
ldflags="-s -w -buildid="
ldflags+=" -X ${pkg}.gitVersion=${VERSION} -X ${pkg}.gitCommit=${commit}"
ldflags+=" -X ${pkg}.gitTreeState=${tree_state} -X ${pkg}.buildDate=${build_date}"

build() {
    local out="$1"
    mkdir -p "${out}/bin"
    CGO_ENABLED=0 GOOS=linux GOARCH="${GOARCH}" go build -trimpath -buildvcs=false \
        -ldflags "${ldflags}" -o "${out}/bin/flagpole-apiserver" ./cmd/flagpole-apiserver
    (cd hack/image && go run . -binary "${out}/bin/flagpole-apiserver" -out "${out}" \
        -os linux -arch "${GOARCH}" -name "${IMAGE}" -version "${VERSION}" -epoch "${SOURCE_DATE_EPOCH}")
}

# tee opens its file as the pipeline starts, before build creates OUT: on a
# fresh checkout _output itself does not exist yet.
mkdir -p "${OUT}"
build "${OUT}" | tee "${OUT}.log"
digest="$(sed -n 's/^digest //p' "${OUT}.log")"
rm -f "${OUT}.log"

if [[ "${VERIFY_REPRODUCIBLE:-0}" == 1 ]]; then
    again="$(mktemp -d)"
    trap 'rm -rf "${again}"' EXIT
    # A clean build cache for the second binary would take minutes; the
    # binary is compared byte for byte instead, and the image step is redone.
    second="$(build "${again}" | sed -n 's/^digest //p')"
    if ! cmp -s "${OUT}/bin/flagpole-apiserver" "${again}/bin/flagpole-apiserver" \
        || ! cmp -s "${OUT}/flagpole-apiserver.oci.tar" "${again}/flagpole-apiserver.oci.tar" \
        || [[ "${digest}" != "${second}" ]]; then
        echo "build-image: NOT reproducible: ${digest} vs ${second}" >&2
        exit 1
    fi
    echo "reproducible: a second build gave the same binary, archive and digest ${digest}"
fi
