#!/usr/bin/env bash
# Builds kubectl-flagpole release archives and the krew manifest for them:
#   _output/release/kubectl-flagpole_<version>_<os>_<arch>.tar.gz  (each holds
#   the binary, kubectl-flagpole or kubectl-flagpole.exe)
#   _output/release/flagpole.yaml   (artifacts/krew/flagpole.yaml.tmpl filled in)
#   _output/release/SHA256SUMS
# for linux, darwin and windows on amd64 and arm64. The archives are
# reproducible: static binaries (CGO_ENABLED=0, -trimpath, the version
# stamped), files sorted, owner, group and times fixed, gzip without a name
# or time.
# VERSION (default: git describe), RELEASE_URL (where the archives will be
# downloaded from; default the GitHub release of VERSION) and PLATFORMS
# ("linux/amd64 darwin/arm64 ..."; default all six) tune it.
set -o errexit
set -o nounset
set -o pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "${ROOT}"

VERSION="${VERSION:-$(git describe --tags --match 'v*' 2>/dev/null || echo "v0.1.0-dev+$(git rev-parse --short=12 HEAD)")}"
RELEASE_URL="${RELEASE_URL:-https://github.com/flagpole-dev/flagpole/releases/download/${VERSION}}"
PLATFORMS="${PLATFORMS:-linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64 windows/arm64}"
OUT="${ROOT}/_output/release"
COMMIT="$(git rev-parse HEAD)"
# Archive times: the commit's, so the same commit gives the same bytes.
EPOCH="$(git log -1 --format=%ct)"

rm -rf "${OUT}"
mkdir -p "${OUT}"
platforms_yaml=""
for platform in ${PLATFORMS}; do
    os="${platform%/*}"
    arch="${platform#*/}"
    bin="kubectl-flagpole"
    [[ "${os}" == "windows" ]] && bin="kubectl-flagpole.exe"
    stage="$(mktemp -d)"
    CGO_ENABLED=0 GOOS="${os}" GOARCH="${arch}" go build -trimpath -buildvcs=false \
        -ldflags "-s -w -X github.com/flagpole-dev/flagpole/pkg/version.gitVersion=${VERSION} -X github.com/flagpole-dev/flagpole/pkg/version.gitCommit=${COMMIT} -X github.com/flagpole-dev/flagpole/pkg/version.gitTreeState=clean" \
        -o "${stage}/${bin}" ./cmd/kubectl-flagpole
    archive="kubectl-flagpole_${VERSION}_${os}_${arch}.tar.gz"
    tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@${EPOCH}" --mode='u=rwx,go=rx' \
        -C "${stage}" -cf - "${bin}" | gzip -n -9 > "${OUT}/${archive}"
    rm -rf "${stage}"
    sha="$(sha256sum "${OUT}/${archive}" | cut -d' ' -f1)"
    platforms_yaml+="  - selector:
      matchLabels:
        os: ${os}
        arch: ${arch}
    uri: ${RELEASE_URL}/${archive}
    sha256: ${sha}
    bin: ${bin}
    files:
    - from: ${bin}
      to: .
"
    echo "${archive}"
done
(cd "${OUT}" && sha256sum -- *.tar.gz > SHA256SUMS)
manifest="$(<artifacts/krew/flagpole.yaml.tmpl)"
manifest="${manifest//'${VERSION}'/${VERSION}}"
manifest="${manifest//'${PLATFORMS}'/${platforms_yaml%$'\n'}}"
printf '%s\n' "${manifest}" > "${OUT}/flagpole.yaml"
echo "${OUT}/flagpole.yaml"
