#!/usr/bin/env bash
# Builds the real components the e2e suite runs against, from the pins in
# hack/tools/go.mod: kube-apiserver, kube-controller-manager and kubectl from
# k8s.io/kubernetes v1.37.2, and etcd. Output: _output/tools/bin (git-ignored).
# A stamp of the pins skips the build when nothing changed; Go's build cache
# makes a rebuild after a pin change incremental.
set -o errexit
set -o nounset
set -o pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
TOOLS="${ROOT}/hack/tools"
OUT="${ROOT}/_output/tools/bin"
KUBE_VERSION="v1.37.2"

# The version kube-apiserver reports and clients parse; without it a binary
# built from the module says v0.0.0-master.
major="${KUBE_VERSION#v}"; major="${major%%.*}"
minor="${KUBE_VERSION#v*.}"; minor="${minor%%.*}"
version_pkgs=(k8s.io/component-base/version k8s.io/client-go/pkg/version)
ldflags="-s -w"
for pkg in "${version_pkgs[@]}"; do
    ldflags+=" -X ${pkg}.gitVersion=${KUBE_VERSION} -X ${pkg}.gitMajor=${major} -X ${pkg}.gitMinor=${minor}"
    ldflags+=" -X ${pkg}.gitTreeState=clean -X ${pkg}.buildDate=1970-01-01T00:00:00Z"
done

stamp="$(cat "${TOOLS}/go.mod" "${TOOLS}/go.sum" "${BASH_SOURCE[0]}" | sha256sum | cut -d' ' -f1)"
binaries=(kube-apiserver kube-controller-manager kubectl etcd)
up_to_date=true
for b in "${binaries[@]}"; do
    [[ -x "${OUT}/${b}" ]] || up_to_date=false
done
if [[ "${up_to_date}" == true && "$(cat "${OUT}/.stamp" 2>/dev/null)" == "${stamp}" ]]; then
    echo "tools up to date in ${OUT}"
    exit 0
fi

mkdir -p "${OUT}"
rm -f "${OUT}/.stamp"
cd "${TOOLS}"
start=$(date +%s)
# One go build for all four: shared packages compile once.
go build -trimpath -ldflags "${ldflags}" -o "${OUT}/" \
    k8s.io/kubernetes/cmd/kube-apiserver \
    k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kubectl
go build -trimpath -ldflags "-s -w" -o "${OUT}/etcd" go.etcd.io/etcd/server/v3
echo "${stamp}" > "${OUT}/.stamp"
echo "built ${binaries[*]} in $(( $(date +%s) - start ))s into ${OUT}"
"${OUT}/kube-apiserver" --version
"${OUT}/kubectl" version --client
# Not piped into head: with pipefail, etcd writing its next line after head
# has gone is a SIGPIPE that fails the script.
etcd_version="$("${OUT}/etcd" --version)"
echo "${etcd_version%%$'\n'*}"
