#!/usr/bin/env bash
# Builds the real components the tests run against, from the pins in
# hack/tools/go.mod (k8s.io/kubernetes v1.37.2, etcd v3.7):
#   hack/build-tools.sh        kube-apiserver, kube-controller-manager, kubectl
#                              and etcd (the e2e suite's control plane);
#   hack/build-tools.sh node   the same plus kubelet, kube-scheduler and
#                              kube-proxy (the real node, hack/node.sh);
#   hack/build-tools.sh helm   helm, from the pin in hack/helm/go.mod (the
#                              chart's tests, artifacts/chart).
# Output: _output/tools/bin (git-ignored). A stamp of the pins per set skips
# the build when nothing changed; Go's build cache makes a rebuild after a pin
# change incremental. etcd (its own packages) builds beside the kube commands.
set -o errexit
set -o nounset
set -o pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
TOOLS="${ROOT}/hack/tools"
OUT="${ROOT}/_output/tools/bin"
KUBE_VERSION="v1.37.2"

set_name="${1:-e2e}"
kube_cmds=(kube-apiserver kube-controller-manager kubectl)
case "${set_name}" in
e2e) ;;
node) kube_cmds+=(kubelet kube-scheduler kube-proxy) ;;
helm) ;;
*)
    echo "usage: $0 [node|helm]" >&2
    exit 2
    ;;
esac

# up_to_date STAMP_FILE STAMP BINARY...: every binary is there and was built
# from STAMP.
up_to_date() {
    local file="$1" want="$2" b
    shift 2
    for b in "$@"; do
        [[ -x "${OUT}/${b}" ]] || return 1
    done
    [[ "$(cat "${file}" 2>/dev/null)" == "${want}" ]]
}

if [[ "${set_name}" == helm ]]; then
    HELM="${ROOT}/hack/helm"
    helm_version="$(sed -n 's/^\thelm.sh\/helm\/v4 \(v[^ ]*\).*/\1/p' "${HELM}/go.mod")"
    stamp="$(cat "${HELM}/go.mod" "${HELM}/go.sum" "${BASH_SOURCE[0]}" | sha256sum | cut -d' ' -f1)"
    if up_to_date "${OUT}/.stamp-helm" "${stamp}" helm; then
        echo "tools (helm) up to date in ${OUT}"
        exit 0
    fi
    mkdir -p "${OUT}"
    rm -f "${OUT}/.stamp-helm"
    start=$(date +%s)
    # helm reports the version stamped here (its default is only major.minor).
    (cd "${HELM}" && go build -trimpath \
        -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=${helm_version}" \
        -o "${OUT}/helm" helm.sh/helm/v4/cmd/helm)
    echo "${stamp}" >"${OUT}/.stamp-helm"
    echo "built helm ${helm_version} in $(( $(date +%s) - start ))s into ${OUT}"
    "${OUT}/helm" version --short
    exit 0
fi

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
stamp_file="${OUT}/.stamp-${set_name}"
binaries=("${kube_cmds[@]}" etcd)
if up_to_date "${stamp_file}" "${stamp}" "${binaries[@]}"; then
    echo "tools (${set_name}) up to date in ${OUT}"
    exit 0
fi

mkdir -p "${OUT}"
rm -f "${stamp_file}"
cd "${TOOLS}"
start=$(date +%s)
# etcd shares few packages with the kube commands: built beside them, it uses
# the core the kube build leaves idle while it links.
go build -trimpath -ldflags "-s -w" -o "${OUT}/etcd" go.etcd.io/etcd/server/v3 &
etcd_pid=$!
# One go build for the kube commands: shared packages compile once.
pkgs=()
for c in "${kube_cmds[@]}"; do
    pkgs+=("k8s.io/kubernetes/cmd/${c}")
done
kube_rc=0
go build -trimpath -ldflags "${ldflags}" -o "${OUT}/" "${pkgs[@]}" || kube_rc=$?
etcd_rc=0
wait "${etcd_pid}" || etcd_rc=$?
if (( kube_rc != 0 || etcd_rc != 0 )); then
    echo "build-tools: go build failed (kube commands: exit ${kube_rc}, etcd: exit ${etcd_rc})" >&2
    exit 1
fi
echo "${stamp}" > "${stamp_file}"
# The node set holds the e2e set, built from the same pins.
[[ "${set_name}" == node ]] && echo "${stamp}" > "${OUT}/.stamp-e2e"
echo "built ${binaries[*]} in $(( $(date +%s) - start ))s into ${OUT}"
"${OUT}/kube-apiserver" --version
"${OUT}/kubectl" version --client
# Not piped into head: with pipefail, etcd writing its next line after head
# has gone is a SIGPIPE that fails the script.
etcd_version="$("${OUT}/etcd" --version)"
echo "${etcd_version%%$'\n'*}"
