#!/usr/bin/env bash
# A single-node Kubernetes cluster from real parts, on this machine:
# containerd, runc and the CNI plugins from Debian's packages; etcd,
# kube-apiserver, kube-controller-manager, kube-scheduler, kubelet,
# kube-proxy and kubectl v1.37.2 built from their modules
# (hack/build-tools.sh node); CoreDNS built from its module; the pause, etcd,
# CoreDNS, Flagpole and test-application images built here and imported.
#
#   hack/node.sh up            install what is missing, build, start; prints
#                              how long each part took (a failed or partial
#                              node is taken down first)
#   hack/node.sh down          stop everything and remove what the node made
#   hack/node.sh status        which daemons run; the node and its Pods
#   hack/node.sh verify-clean  fail unless down left nothing behind
#   hack/node.sh exec CMD...   run CMD in the node's network (KUBECONFIG set,
#                              the pinned kubectl first on PATH)
#   hack/node.sh kubectl ARGS  the pinned kubectl against the node
#   hack/node.sh volumes       (re)create the static PersistentVolumes for
#                              etcd-0..2 that are missing or Released
#   hack/node.sh check         exit 0 if this machine can run the node, else
#                              print why not (hack/test.sh asks this)
#
# Needs root, cgroup v1, and Debian's package archive when a package is
# missing; refuses with one line saying what is missing otherwise. The node
# lives in network and mount namespaces of its own (hack/node/lib.sh): no
# address, route, iptables rule or mount of it is in the machine's.
# docs/testing.md, "The real node", says more.
set -o errexit
set -o nounset
set -o pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
# shellcheck source=hack/node/lib.sh
source "${ROOT}/hack/node/lib.sh"
# shellcheck source=hack/node/pki.sh
source "${ROOT}/hack/node/pki.sh"
# shellcheck source=hack/node/config.sh
source "${ROOT}/hack/node/config.sh"

# ---- refusals ----------------------------------------------------------------

preflight() {
    [[ "$(id -u)" == 0 ]] || die "needs root (it makes namespaces, cgroups and iptables rules): run it as root"
    [[ "$(uname -s)" == Linux ]] || die "needs Linux"
    if [[ -f /sys/fs/cgroup/cgroup.controllers ]]; then
        die "this machine has cgroup v2 only; hack/node.sh sets up cgroup v1 hierarchies (the machines it is tested on): not supported here"
    fi
    local c
    for c in cpu cpuacct cpuset memory pids devices freezer; do
        [[ -f "/sys/fs/cgroup/${c}/cgroup.procs" ]] ||
            die "no cgroup v1 hierarchy for ${c} at /sys/fs/cgroup/${c}: the kubelet needs it; mount the cgroup controllers"
    done
    for c in go nsenter unshare setsid ip findmnt mountpoint; do
        command -v "${c}" >/dev/null || die "${c} not found: install it (go from go.dev; the others are Debian's util-linux and iproute2)"
    done
    if [[ -e "${OWNER_FILE}" && "$(cat "${OWNER_FILE}")" != "${ROOT}" ]]; then
        die "a node started from $(cat "${OWNER_FILE}") is up (one per machine): run $(cat "${OWNER_FILE}")/hack/node.sh down first"
    fi
}

# check: what up needs from the machine, without changing it (but apt's
# package lists, when a package is missing).
check() {
    preflight
    unshare --net true 2>/dev/null || die "cannot make a network namespace (unshare --net failed): the node needs one"
    local missing=() pkg
    for pkg in "${!PACKAGES[@]}"; do
        [[ -e "${PACKAGES[${pkg}]}" ]] || missing+=("${pkg}")
    done
    if (( ${#missing[@]} > 0 )); then
        command -v apt-get >/dev/null || die "${missing[*]} missing and no apt-get to install them"
        timeout 300 apt-get update -qq >/dev/null 2>&1 ||
            die "${missing[*]} missing and apt-get update fails (Debian's archive unreachable?)"
    fi
}

install_packages() {
    local missing=() pkg
    for pkg in "${!PACKAGES[@]}"; do
        [[ -e "${PACKAGES[${pkg}]}" ]] || missing+=("${pkg}")
    done
    if (( ${#missing[@]} == 0 )); then
        return 0
    fi
    log "installing ${missing[*]} with apt-get"
    mkdir -p "${LOG_DIR}"
    local apt_log="${LOG_DIR}/apt.log"
    export DEBIAN_FRONTEND=noninteractive
    if ! timeout 600 apt-get install -y --no-install-recommends "${missing[@]}" >"${apt_log}" 2>&1; then
        timeout 300 apt-get update >>"${apt_log}" 2>&1 &&
            timeout 600 apt-get install -y --no-install-recommends "${missing[@]}" >>"${apt_log}" 2>&1 ||
            die "cannot install ${missing[*]} with apt-get (see ${apt_log}): install them, or run where Debian's archive is reachable"
    fi
    for pkg in "${missing[@]}"; do
        [[ -e "${PACKAGES[${pkg}]}" ]] || die "apt-get installed ${pkg} but ${PACKAGES[${pkg}]} is missing (see ${apt_log})"
    done
}

# ---- build -------------------------------------------------------------------

# build_static NAME DIR PKG: a static binary, from the module at DIR.
build_static() {
    (cd "$2" && CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags "-s -w -buildid=" -o "${BIN_DIR}/$1" "$3")
}

build_coredns() {
    local src="${ROOT}/hack/node/coredns" stamp
    stamp="$(cat "${src}/go.mod" "${src}/go.sum" "${src}/main.go" | sha256sum | cut -d' ' -f1)"
    if [[ -x "${BIN_DIR}/coredns" && "$(cat "${BIN_DIR}/.coredns-stamp" 2>/dev/null)" == "${stamp}" ]]; then
        return 0
    fi
    build_static coredns "${src}" .
    echo "${stamp}" >"${BIN_DIR}/.coredns-stamp"
}

build_binaries() {
    mkdir -p "${BIN_DIR}" "${LOG_DIR}"
    # CoreDNS (a module of its own) builds beside the kube commands: the two
    # share no packages, and each leaves a core idle while it links.
    build_coredns >"${LOG_DIR}/build-coredns.log" 2>&1 &
    local coredns_pid=$!
    local tools_rc=0 coredns_rc=0
    "${ROOT}/hack/build-tools.sh" node >"${LOG_DIR}/build-tools.log" 2>&1 || tools_rc=$?
    wait "${coredns_pid}" || coredns_rc=$?
    (( tools_rc == 0 )) || die "hack/build-tools.sh node failed: see ${LOG_DIR}/build-tools.log"
    (( coredns_rc == 0 )) || die "building CoreDNS failed: see ${LOG_DIR}/build-coredns.log"
    # The etcd image's binary: static, unlike the tools' (which may use cgo's
    # resolver), from the same pin.
    build_static etcd "${ROOT}/hack/tools" go.etcd.io/etcd/server/v3 >"${LOG_DIR}/build-static.log" 2>&1 &&
        build_static pause "${ROOT}" ./hack/node/pause >>"${LOG_DIR}/build-static.log" 2>&1 &&
        build_static flagpole-app "${ROOT}" ./test/node/app >>"${LOG_DIR}/build-static.log" 2>&1 &&
        (cd "${ROOT}/hack/image" && go build -o "${BIN_DIR}/image" .) >>"${LOG_DIR}/build-static.log" 2>&1 ||
        die "building the node's static binaries failed: see ${LOG_DIR}/build-static.log"
}

# pack NAME PATH IMAGE: an OCI archive of BIN_DIR/NAME at PATH in the image.
pack() {
    "${BIN_DIR}/image" -binary "${BIN_DIR}/$1" -path "$2" -name "$3" -out "${IMAGE_DIR}/$1" \
        -arch "$(go env GOARCH)" -epoch 0 >/dev/null
}

build_images() {
    mkdir -p "${IMAGE_DIR}"
    pack pause pause "${PAUSE_IMAGE}"
    pack coredns coredns "${COREDNS_IMAGE}"
    pack etcd usr/local/bin/etcd "${ETCD_IMAGE}"
    pack flagpole-app flagpole-app "${APP_IMAGE}"
    # Flagpole's image, as a user builds it (docs/install.md).
    IMAGE="${FLAGPOLE_IMAGE}" OUT="${IMAGE_DIR}/flagpole-apiserver" "${ROOT}/hack/build-image.sh" \
        >"${LOG_DIR}/build-image.log" 2>&1 || die "hack/build-image.sh failed: see ${LOG_DIR}/build-image.log"
    IMAGE="${FLAGPOLE_NEXT_IMAGE}" VERSION="${FLAGPOLE_NEXT_VERSION}" OUT="${IMAGE_DIR}/flagpole-apiserver-next" \
        "${ROOT}/hack/build-image.sh" >>"${LOG_DIR}/build-image.log" 2>&1 ||
        die "hack/build-image.sh (${FLAGPOLE_NEXT_IMAGE}) failed: see ${LOG_DIR}/build-image.log"
}

# ---- namespaces, cgroups -----------------------------------------------------

# The kernel-wide values the kubelet insists on (pkg/kubelet/cm,
# setupKernelTunables); the node's mount namespace shows it these, read-only,
# instead of the machine's.
declare -A KUBELET_SYSCTLS=(
    [vm/overcommit_memory]=1
    [vm/panic_on_oom]=0
    [kernel/panic]=10
    [kernel/panic_on_oops]=1
    [kernel/keys/root_maxkeys]=1000000
    [kernel/keys/root_maxbytes]=25000000
)

make_namespaces() {
    mkdir -p "${RUN_DIR}" "${STATE_DIR}"
    echo "${ROOT}" >"${OWNER_FILE}"
    # A namespace is kept by binding it onto a file, which must not be on a
    # shared mount: give RUN_DIR a private mount of its own where it is.
    if [[ "$(findmnt -no PROPAGATION --target "${RUN_DIR}")" == shared* ]]; then
        mount --bind "${RUN_DIR}" "${RUN_DIR}"
        mount --make-private "${RUN_DIR}"
    fi
    touch "${NETNS}" "${MNTNS}"
    unshare --net="${NETNS}" true
    # Private propagation: no mount made in the node reaches the machine.
    nsenter --net="${NETNS}" -- unshare --mount="${MNTNS}" --propagation private true

    in_node ip link set lo up
    in_node ip link add "${NODE_LINK}" type veth peer name "${NODE_PEER}"
    in_node ip addr add "${NODE_IP}/${NODE_PREFIX}" dev "${NODE_LINK}"
    in_node ip link set "${NODE_LINK}" up
    in_node ip link set "${NODE_PEER}" up
    # Routed: the Pods' range (to cni0, once the first Pod makes it) and the
    # Services' (kube-proxy rewrites those in OUTPUT and PREROUTING; the route
    # only lets a local connect() start). Everything else is unreachable.
    in_node ip route add "${SERVICE_CIDR}" dev "${NODE_LINK}"
    in_node sysctl -qw net.ipv4.ip_forward=1
    # After ip_forward, which sets every interface's: the peer forwards
    # nothing, so a packet to an address without endpoints dies there.
    in_node sysctl -qw "net.ipv4.conf.${NODE_PEER}.forwarding=0"
    in_node sysctl -qw net.bridge.bridge-nf-call-iptables=1 net.bridge.bridge-nf-call-ip6tables=1

    local key dir="${RUN_DIR}/sysctl"
    mkdir -p "${dir}"
    for key in "${!KUBELET_SYSCTLS[@]}"; do
        echo "${KUBELET_SYSCTLS[${key}]}" >"${dir}/${key//\//.}"
        in_node mount --bind "${dir}/${key//\//.}" "/proc/sys/${key}"
        in_node mount -o remount,bind,ro "/proc/sys/${key}"
    done
}

make_namespaces_and_cgroups() {
    make_namespaces
    make_cgroups
}

make_cgroups() {
    local d
    for d in $(cgroup_dirs); do
        mkdir -p "${d}"
    done
    # A new cpuset cgroup has no CPUs or memory nodes until given its
    # parent's.
    local cs=/sys/fs/cgroup/cpuset
    cat "${cs}/cpuset.cpus" >"${cs}/${CGROUP_NAME}/cpuset.cpus"
    cat "${cs}/cpuset.mems" >"${cs}/${CGROUP_NAME}/cpuset.mems"
}

write_pki_and_configs() {
    write_pki
    write_configs
}

# ---- daemons -----------------------------------------------------------------

start_etcd() {
    start_daemon etcd "${TOOLS_BIN}/etcd" \
        --name "${NODE_NAME}" --data-dir "${ETCD_DIR}" \
        --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
        --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
        --initial-cluster "${NODE_NAME}=http://127.0.0.1:2380" --log-level warn
    wait_for 60 "etcd's /health (see ${LOG_DIR}/etcd.log)" \
        in_node_net curl -fsS --max-time 2 http://127.0.0.1:2379/health
}

start_kube_apiserver() {
    # It listens on the node's address, not only loopback: Pods reach it
    # through the kubernetes Service.
    start_daemon kube-apiserver "${TOOLS_BIN}/kube-apiserver" \
        --advertise-address "${NODE_IP}" --bind-address 0.0.0.0 --secure-port "${APISERVER_PORT}" \
        --etcd-servers http://127.0.0.1:2379 \
        --service-cluster-ip-range "${SERVICE_CIDR}" \
        --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
        --allow-privileged=true \
        --client-ca-file "${PKI_DIR}/ca.crt" \
        --tls-cert-file "${PKI_DIR}/apiserver.crt" --tls-private-key-file "${PKI_DIR}/apiserver.key" \
        --kubelet-client-certificate "${PKI_DIR}/apiserver-kubelet-client.crt" \
        --kubelet-client-key "${PKI_DIR}/apiserver-kubelet-client.key" \
        --kubelet-certificate-authority "${PKI_DIR}/ca.crt" \
        --kubelet-preferred-address-types InternalIP \
        --service-account-issuer "https://kubernetes.default.svc.${CLUSTER_DOMAIN}" \
        --service-account-key-file "${PKI_DIR}/sa.pub" \
        --service-account-signing-key-file "${PKI_DIR}/sa.key" \
        --requestheader-client-ca-file "${PKI_DIR}/front-proxy-ca.crt" \
        --requestheader-allowed-names front-proxy-client \
        --requestheader-username-headers X-Remote-User --requestheader-group-headers X-Remote-Group \
        --requestheader-extra-headers-prefix X-Remote-Extra- \
        --proxy-client-cert-file "${PKI_DIR}/front-proxy-client.crt" \
        --proxy-client-key-file "${PKI_DIR}/front-proxy-client.key" \
        --profiling=false
    wait_for 120 "kube-apiserver's /readyz (see ${LOG_DIR}/kube-apiserver.log)" \
        kubectl_node get --raw /readyz
}

start_containerd() {
    mkdir -p "${STATE_DIR}/containerd" "${RUN_DIR}/containerd"
    start_daemon containerd /usr/bin/containerd --config "${CONF_DIR}/containerd.toml"
    wait_for 30 "containerd's socket ${CONTAINERD_SOCK} (see ${LOG_DIR}/containerd.log)" \
        ctr --address "${CONTAINERD_SOCK}" version
}

start_containerd_and_import() {
    start_containerd
    import_images
}

import_images() {
    local archive
    for archive in "${IMAGE_DIR}"/*/*.oci.tar; do
        ctr --address "${CONTAINERD_SOCK}" -n k8s.io images import --no-unpack=false "${archive}" \
            >>"${LOG_DIR}/images.log" 2>&1 || die "ctr images import ${archive} failed: see ${LOG_DIR}/images.log"
    done
}

start_controllers() {
    local c
    for c in kube-controller-manager kube-scheduler; do
        local args=(--kubeconfig "${CONF_DIR}/${c}.kubeconfig"
            --authentication-kubeconfig "${CONF_DIR}/${c}.kubeconfig"
            --authorization-kubeconfig "${CONF_DIR}/${c}.kubeconfig"
            --leader-elect=false --bind-address 127.0.0.1)
        if [[ "${c}" == kube-controller-manager ]]; then
            args+=(--service-account-private-key-file "${PKI_DIR}/sa.key" --root-ca-file "${PKI_DIR}/ca.crt"
                --use-service-account-credentials=true --cluster-signing-cert-file "${PKI_DIR}/ca.crt"
                --cluster-signing-key-file "${PKI_DIR}/ca.key")
        fi
        start_daemon "${c}" "${TOOLS_BIN}/${c}" "${args[@]}"
    done
}

node_ready() {
    [[ "$(kubectl_node get node "${NODE_NAME}" \
        -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" == True ]]
}

start_kubelet() {
    mkdir -p "${STATE_DIR}/kubelet"
    [[ -e "${KUBELET_FIXED_DIR}" ]] || touch "${KUBELET_FIXED_MARK}"
    start_daemon kubelet "${TOOLS_BIN}/kubelet" \
        --config "${CONF_DIR}/kubelet.yaml" --kubeconfig "${CONF_DIR}/kubelet.kubeconfig" \
        --root-dir "${STATE_DIR}/kubelet" --hostname-override "${NODE_NAME}" --node-ip "${NODE_IP}"
    wait_for 120 "node ${NODE_NAME} Ready (see ${LOG_DIR}/kubelet.log)" node_ready
}

start_kube_proxy() {
    start_daemon kube-proxy "${TOOLS_BIN}/kube-proxy" --config "${CONF_DIR}/kube-proxy.yaml"
    wait_for 60 "kube-proxy's /healthz (see ${LOG_DIR}/kube-proxy.log)" \
        in_node_net curl -fsS --max-time 2 http://127.0.0.1:10256/healthz
}

start_dns() {
    sed -e "s|@IMAGE@|${COREDNS_IMAGE}|" -e "s|@DNS_IP@|${DNS_SERVICE_IP}|" -e "s|@DOMAIN@|${CLUSTER_DOMAIN}|" \
        "${ROOT}/hack/node/coredns.yaml" | kubectl_node apply -f - >/dev/null
    wait_for 180 "CoreDNS ready (kubectl -n kube-system describe pod -l k8s-app=kube-dns)" \
        kubectl_node -n kube-system wait --for=condition=Available --timeout=5s deployment/coredns
}

# ---- volumes -----------------------------------------------------------------

# ensure_volumes: static PersistentVolumes for the etcd members' claims
# (data-etcd-N in flagpole-system, as artifacts/deploy's StatefulSet names
# them), each pre-bound to its claim and a hostPath directory owned by the
# etcd user 65532 (fsGroup does not apply to hostPath). One that a deleted
# claim left Released is wiped and made again, as a provisioner would.
ensure_volumes() {
    local i pv phase dir
    for i in 0 1 2; do
        pv="flagpole-etcd-${i}"
        dir="${VOLUME_DIR}/etcd-${i}"
        phase="$(kubectl_node get pv "${pv}" -o jsonpath='{.status.phase}' 2>/dev/null || true)"
        case "${phase}" in
        Bound | Available | Pending) continue ;;
        "") ;;
        *)
            kubectl_node delete pv "${pv}" --wait=true --timeout=60s >/dev/null
            ;;
        esac
        rm -rf "${dir}"
        mkdir -p "${dir}"
        chown 65532:65532 "${dir}"
        chmod 0700 "${dir}"
        kubectl_node apply -f - >/dev/null <<EOF
apiVersion: v1
kind: PersistentVolume
metadata:
  name: ${pv}
  labels: {app.kubernetes.io/part-of: ${NODE_NAME}}
spec:
  capacity: {storage: 4Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: ""
  claimRef: {namespace: flagpole-system, name: data-etcd-${i}}
  hostPath: {path: ${dir}, type: Directory}
EOF
    done
}

# ---- down --------------------------------------------------------------------

# node_pids: every process in the node's namespaces or cgroups, but this
# shell's.
node_pids() {
    local net mnt p ino
    net="$(stat -L -c %i "${NETNS}" 2>/dev/null || true)"
    mnt="$(stat -L -c %i "${MNTNS}" 2>/dev/null || true)"
    {
        for p in /proc/[0-9]*; do
            [[ "${p#/proc/}" == "$$" || "${p#/proc/}" == "${BASHPID}" ]] && continue
            ino="$(stat -L -c %i "${p}/ns/net" 2>/dev/null || true)"
            if [[ -n "${net}" && "${net}" != 0 && "${ino}" == "${net}" ]]; then
                echo "${p#/proc/}"
                continue
            fi
            ino="$(stat -L -c %i "${p}/ns/mnt" 2>/dev/null || true)"
            [[ -n "${mnt}" && "${mnt}" != 0 && "${ino}" == "${mnt}" ]] && echo "${p#/proc/}"
        done
        local d
        for d in $(cgroup_dirs); do
            [[ -d "${d}" ]] && find "${d}" -name cgroup.procs -exec cat {} + 2>/dev/null
        done
    } | sort -un
}

# kill_node_processes SIGNAL GRACE: SIGNAL to every node process, then wait up
# to GRACE seconds for them to be gone.
kill_node_processes() {
    local sig="$1" grace="$2" pids i
    pids="$(node_pids)"
    [[ -z "${pids}" ]] && return 0
    # shellcheck disable=SC2086
    kill "-${sig}" ${pids} 2>/dev/null || true
    for (( i = 0; i < grace * 2; i++ )); do
        [[ -z "$(node_pids)" ]] && return 0
        sleep 0.5
    done
    [[ -z "$(node_pids)" ]]
}

teardown() {
    local d
    # Nothing restarts Pods or rewrites rules once these are gone; the
    # kubelet leaves its Pods running when it stops.
    for d in kube-proxy kube-scheduler kube-controller-manager kubelet; do
        stop_daemon "${d}"
    done
    # The containers: SIGTERM as the kubelet would, SIGKILL after 15 s. Then
    # containerd and its shims, and the control plane.
    local cg
    for cg in $(cgroup_dirs); do
        [[ -d "${cg}" ]] || continue
        find "${cg}" -mindepth 2 -name cgroup.procs -exec cat {} + 2>/dev/null | xargs -r kill -TERM 2>/dev/null || true
        break
    done
    local i
    for (( i = 0; i < 30; i++ )); do
        [[ -z "$(for cg in $(cgroup_dirs); do find "${cg}" -mindepth 2 -name cgroup.procs -exec cat {} + 2>/dev/null; done)" ]] && break
        sleep 0.5
    done
    for d in containerd kube-apiserver etcd; do
        stop_daemon "${d}" 15
    done
    # What is left (shims, containers that ignored SIGTERM, a daemon whose pid
    # file a failed up never wrote).
    kill_node_processes TERM 5 || kill_node_processes KILL 10 ||
        die "processes of the node survive SIGKILL: $(node_pids | tr '\n' ' ')"

    # The namespaces go with their last process and their file's mount: the
    # node's interfaces, routes, iptables rules and mounts with them.
    local f
    for f in "${MNTNS}" "${NETNS}"; do
        if mountpoint -q "${f}" 2>/dev/null; then
            umount "${f}"
        fi
    done
    for d in $(cgroup_dirs); do
        [[ -d "${d}" ]] && find "${d}" -depth -type d -exec rmdir {} + 2>/dev/null
        [[ -d "${d}" ]] && die "cgroup ${d} is still there: $(find "${d}" -name cgroup.procs -exec cat {} + | tr '\n' ' ')"
    done
    if mountpoint -q "${RUN_DIR}" 2>/dev/null; then
        umount "${RUN_DIR}"
    fi
    # Below a directory with no mounts only (verify_clean checks mounts).
    if [[ -z "$(node_mounts)" ]]; then
        rm -rf --one-file-system "${RUN_DIR}" "${STATE_DIR}" "${ETCD_DIR}" "${PID_DIR}"
        # The sandboxes' CNI results (their networks went with the namespace).
        rm -f "${CNI_RESULTS}/${NODE_NAME}-"* "${CNI_RESULTS}/cni-loopback-"*
        rmdir "${CNI_RESULTS}" "${CNI_RESULTS%/results}" 2>/dev/null || true
        if [[ -e "${KUBELET_FIXED_MARK}" ]]; then
            rm -rf --one-file-system "${KUBELET_FIXED_DIR}"
            rm -f "${KUBELET_FIXED_MARK}"
        fi
        # containerd 1.6's shim sockets, if no other containerd uses the
        # directory.
        if [[ -d "${CONTAINERD_SHIM_SOCKETS}" ]] && ! pgrep -x containerd >/dev/null; then
            find "${CONTAINERD_SHIM_SOCKETS}" -type s -delete 2>/dev/null || true
            rmdir "${CONTAINERD_SHIM_SOCKETS}" /run/containerd 2>/dev/null || true
        fi
    fi
}

# ---- verify-clean ------------------------------------------------------------

node_mounts() {
    findmnt -rn -o TARGET | grep -E "^(${RUN_DIR}|${STATE_DIR}|${OUT_DIR})(/|$)" || true
}

verify_clean() {
    local problems=() p
    local f cmd pattern="${RUN_DIR}|${OUT_DIR}/|${TOOLS_BIN}/(kubelet|kube-proxy|kube-scheduler)"
    for f in /proc/[0-9]*/cmdline; do
        p="${f#/proc/}"
        p="${p%/cmdline}"
        [[ "${p}" == "$$" || "${p}" == "${BASHPID}" ]] && continue
        # A process may end while this looks.
        cmd="$({ tr '\0' ' ' <"${f}"; } 2>/dev/null)" || continue
        [[ "${cmd}" =~ ${pattern} ]] && problems+=("process ${p}: ${cmd:0:120}")
    done
    [[ -e "${NETNS}" ]] && problems+=("network namespace file ${NETNS}")
    [[ -e "${MNTNS}" ]] && problems+=("mount namespace file ${MNTNS}")
    for p in $(node_mounts); do
        problems+=("mount ${p}")
    done
    for p in $(cgroup_dirs) /sys/fs/cgroup/*/kubepods; do
        [[ -d "${p}" ]] && problems+=("cgroup ${p}")
    done
    for p in cni0 "${NODE_LINK}" "${NODE_PEER}"; do
        ip link show "${p}" >/dev/null 2>&1 && problems+=("interface ${p} in the machine's network namespace")
    done
    local save
    for save in iptables-save ip6tables-save iptables-legacy-save ip6tables-legacy-save; do
        command -v "${save}" >/dev/null || continue
        for p in $("${save}" 2>/dev/null | sed -n -E 's/^:((KUBE|CNI)-[^ ]*).*/\1/p'); do
            problems+=("${save%-save} chain ${p} in the machine's network namespace")
        done
    done
    for p in "${RUN_DIR}" "${STATE_DIR}" "${ETCD_DIR}" "${CNI_RESULTS}/${NODE_NAME}-"*; do
        [[ -e "${p}" ]] && problems+=("${p}")
    done
    [[ -e "${KUBELET_FIXED_MARK}" ]] && problems+=("${KUBELET_FIXED_DIR}, which the kubelet made")
    if (( ${#problems[@]} > 0 )); then
        echo "node: NOT clean, left behind:" >&2
        printf '  %s\n' "${problems[@]}" >&2
        return 1
    fi
    log "clean: no process, namespace, mount, cgroup, interface, iptables chain or state directory of the node is left"
}

# ---- commands ----------------------------------------------------------------

node_is_up() { [[ -e "${NETNS}" ]] && mountpoint -q "${NETNS}" 2>/dev/null; }

cmd_up() {
    local start
    start=$(date +%s)
    preflight
    if [[ -e "${OWNER_FILE}" ]] || ! verify_clean >/dev/null 2>&1; then
        log "a node (or what is left of one) is there: taking it down first"
        step "down (leftovers)" teardown
    fi
    step "packages (apt)" install_packages
    step "build (tools, CoreDNS, etc.)" build_binaries
    step "images" build_images
    mkdir -p "${CONF_DIR}" "${LOG_DIR}" "${PID_DIR}"
    rm -f "${LOG_DIR}"/*.log.prev
    step "namespaces and cgroups" make_namespaces_and_cgroups
    step "certificates and configs" write_pki_and_configs
    step "etcd" start_etcd
    step "kube-apiserver" start_kube_apiserver
    step "containerd and image import" start_containerd_and_import
    step "controller-manager, scheduler" start_controllers
    step "kubelet (node Ready)" start_kubelet
    step "kube-proxy" start_kube_proxy
    step "CoreDNS" start_dns
    step "volumes" ensure_volumes
    log "up in $(( $(date +%s) - start ))s: hack/node.sh kubectl get nodes; kubeconfig ${KUBECONFIG_ADMIN} (reachable in the node's network: hack/node.sh exec ...)"
}

cmd_down() {
    local start
    start=$(date +%s)
    [[ "$(id -u)" == 0 ]] || die "needs root: run it as root"
    if [[ -e "${OWNER_FILE}" && "$(cat "${OWNER_FILE}")" != "${ROOT}" ]]; then
        die "the node was started from $(cat "${OWNER_FILE}"): run $(cat "${OWNER_FILE}")/hack/node.sh down"
    fi
    step "down" teardown
    verify_clean
    log "down in $(( $(date +%s) - start ))s"
}

cmd_status() {
    local d state
    for d in "${DAEMONS[@]}"; do
        state=stopped
        pid_alive "${d}" && state="running (pid $(cat "${PID_DIR}/${d}.pid"))"
        printf 'node: %-24s %s\n' "${d}" "${state}"
    done
    if node_is_up && pid_alive kube-apiserver; then
        kubectl_node get nodes -o wide || true
        kubectl_node get pods -A -o wide || true
    else
        log "not up"
        return 1
    fi
}

cmd_exec() {
    node_is_up || die "the node is not up: hack/node.sh up"
    KUBECONFIG="${KUBECONFIG_ADMIN}" PATH="${TOOLS_BIN}:${PATH}" in_node_net "$@"
}

case "${1:-}" in
up) cmd_up ;;
down) cmd_down ;;
status) cmd_status ;;
verify-clean) verify_clean ;;
check) check ;;
exec)
    shift
    cmd_exec "$@"
    ;;
kubectl)
    shift
    cmd_exec kubectl "$@"
    ;;
volumes)
    node_is_up || die "the node is not up: hack/node.sh up"
    ensure_volumes
    ;;
*)
    sed -n '2,/^set -o errexit/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
