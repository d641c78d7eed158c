# Sourced by hack/node.sh: the real node's names, addresses and directories
# (one definition each), and the helpers its steps share.
#
# Containment: the node is a network namespace and a mount namespace of its
# own, both bound to files under RUN_DIR. Every address below exists only in
# that network namespace, which has no link to the machine's network: no veth
# to the host, no route out, nothing to forward to. Every mount the node makes
# (container root file systems, volumes, the Pods' network namespaces) is in
# its mount namespace, which the machine's never sees. Its cgroups are all
# below CGROUP_NAME. hack/node.sh down removes all three, and verify-clean
# checks that nothing is left.

NODE_NAME=flagpole-node
# Addresses from 198.18.0.0/15 (RFC 2544, set aside for testing and never
# routed on the internet), so they cannot collide with a private network the
# machine or another engineer's test namespaces use.
NODE_IP=198.18.0.2
NODE_PREFIX=24
POD_CIDR=198.18.64.0/20
POD_GATEWAY=198.18.64.1
SERVICE_CIDR=198.18.128.0/20
KUBERNETES_SERVICE_IP=198.18.128.1
DNS_SERVICE_IP=198.18.128.10
CLUSTER_DOMAIN=cluster.local
APISERVER_PORT=6443
# The node's interface: one end of a veth pair whose other end (NODE_PEER)
# stays in the same namespace, with forwarding off, so that traffic to an
# unknown address dies there.
NODE_LINK=node0
NODE_PEER=node0-peer

ROOT="${ROOT:?}"
OUT_DIR="${ROOT}/_output/node"
LOG_DIR="${OUT_DIR}/logs"
PID_DIR="${OUT_DIR}/pids"
PKI_DIR="${OUT_DIR}/pki"
CONF_DIR="${OUT_DIR}/config"
BIN_DIR="${OUT_DIR}/bin"
IMAGE_DIR="${OUT_DIR}/images"
VOLUME_DIR="${OUT_DIR}/volumes"
ETCD_DIR="${OUT_DIR}/etcd"
TOOLS_BIN="${ROOT}/_output/tools/bin"
KUBECONFIG_ADMIN="${OUT_DIR}/kubeconfig"
# Fixed, short paths: unix sockets live here (a path over 107 bytes fails),
# and there is one node per machine.
RUN_DIR=/run/flagpole-node
STATE_DIR=/var/lib/flagpole-node
NETNS="${RUN_DIR}/netns"
MNTNS="${RUN_DIR}/mntns"
OWNER_FILE="${RUN_DIR}/owner"
CONTAINERD_SOCK="${RUN_DIR}/containerd.sock"
CGROUP_NAME=flagpole-node
# containerd 1.6 puts its shims' sockets here whatever its state directory.
CONTAINERD_SHIM_SOCKETS=/run/containerd/s
# Fixed paths the node writes to outside its own directories: libcni's
# result cache (containerd 1.6 does not move it; files <network>-<id>-<if>),
# and the kubelet's device-plugin directory (hard-coded in the kubelet).
CNI_RESULTS=/var/lib/cni/results
KUBELET_FIXED_DIR=/var/lib/kubelet
# Marks that up created KUBELET_FIXED_DIR (so down removes it).
KUBELET_FIXED_MARK="${OUT_DIR}/created-var-lib-kubelet"

PAUSE_IMAGE=localhost/flagpole-node/pause:1
COREDNS_IMAGE=localhost/flagpole-node/coredns:v1.15.0
APP_IMAGE=localhost/flagpole-node/flagpole-app:dev
# The names artifacts/deploy asks for: the images are built here, from the
# same sources (etcd v3.7.0 from hack/tools' pin; Flagpole from this tree).
ETCD_IMAGE=registry.k8s.io/etcd:3.7.0-0
FLAGPOLE_IMAGE=flagpole-apiserver:dev
# The same source stamped as a later version, for the upgrade e2e.
FLAGPOLE_NEXT_IMAGE=flagpole-apiserver:next
FLAGPOLE_NEXT_VERSION=v0.1.1-node.next

# Debian packages the node needs, and a file each one installs.
declare -A PACKAGES=(
    [containerd]=/usr/bin/containerd
    [runc]=/usr/sbin/runc
    [containernetworking-plugins]=/usr/lib/cni/bridge
    [iptables]=/usr/sbin/iptables
    [conntrack]=/usr/sbin/conntrack
    [curl]=/usr/bin/curl
    [openssl]=/usr/bin/openssl
)
CNI_BIN_DIR=/usr/lib/cni

# Daemons in start order; down stops them in reverse.
DAEMONS=(etcd kube-apiserver containerd kube-controller-manager kube-scheduler kubelet kube-proxy)

log() { echo "node: $*"; }
# die prints one line saying what is wrong and what to do, and exits 1.
die() {
    echo "node: $*" >&2
    exit 1
}

# step NAME FUNC... runs FUNC and prints how long it took.
step() {
    local name="$1"
    shift
    local start ms
    start=$(date +%s%N)
    "$@"
    ms=$(( ($(date +%s%N) - start) / 1000000 ))
    printf 'node: %-30s %4d.%ds\n' "${name}" $(( ms / 1000 )) $(( ms % 1000 / 100 ))
}

# wait_for TIMEOUT WHAT CMD... polls CMD every half second until it succeeds;
# after TIMEOUT seconds it says what it waited for and fails.
wait_for() {
    local timeout="$1" what="$2"
    shift 2
    local deadline=$(( $(date +%s) + timeout ))
    until "$@" >/dev/null 2>&1; do
        if (( $(date +%s) >= deadline )); then
            echo "node: timed out after ${timeout}s waiting for ${what}" >&2
            return 1
        fi
        sleep 0.5
    done
}

# in_node CMD... runs CMD in the node's network and mount namespaces.
in_node() { nsenter --net="${NETNS}" --mount="${MNTNS}" -- "$@"; }
# in_node_net CMD... runs CMD in the node's network namespace only, seeing the
# machine's files and mounts (kubectl, the tests).
in_node_net() { nsenter --net="${NETNS}" -- "$@"; }

kubectl_node() { in_node_net "${TOOLS_BIN}/kubectl" --kubeconfig "${KUBECONFIG_ADMIN}" "$@"; }

# pid_alive NAME: the daemon NAME's recorded process runs the recorded binary.
pid_alive() {
    local name="$1" pid exe
    pid="$(cat "${PID_DIR}/${name}.pid" 2>/dev/null)" || return 1
    [[ -n "${pid}" && -d "/proc/${pid}" ]] || return 1
    exe="$(readlink "/proc/${pid}/exe" 2>/dev/null)" || return 1
    [[ "${exe}" == "$(cat "${PID_DIR}/${name}.exe" 2>/dev/null)" ]]
}

# start_daemon NAME BINARY ARGS... starts BINARY in the node's namespaces, in
# a session of its own (it outlives this script), its output in
# logs/NAME.log, its pid in pids/NAME.pid.
start_daemon() {
    local name="$1" bin="$2"
    shift 2
    mkdir -p "${LOG_DIR}" "${PID_DIR}"
    # nsenter and setsid exec (neither forks here), so $! is the daemon's pid.
    nsenter --net="${NETNS}" --mount="${MNTNS}" -- setsid "${bin}" "$@" \
        >"${LOG_DIR}/${name}.log" 2>&1 </dev/null &
    echo $! >"${PID_DIR}/${name}.pid"
    readlink -f "${bin}" >"${PID_DIR}/${name}.exe"
    sleep 0.2
    pid_alive "${name}" || die "${name} exited at once; see ${LOG_DIR}/${name}.log: $(tail -n 3 "${LOG_DIR}/${name}.log" | tr '\n' ' ')"
}

# stop_daemon NAME [GRACE]: SIGTERM, then SIGKILL after GRACE seconds (10).
stop_daemon() {
    local name="$1" grace="${2:-10}" pid i
    if pid_alive "${name}"; then
        pid="$(cat "${PID_DIR}/${name}.pid")"
        kill -TERM "${pid}" 2>/dev/null || true
        for (( i = 0; i < grace * 10; i++ )); do
            pid_alive "${name}" || break
            sleep 0.1
        done
        if pid_alive "${name}"; then
            log "${name} did not stop within ${grace}s of SIGTERM: SIGKILL"
            kill -KILL "${pid}" 2>/dev/null || true
            for (( i = 0; i < 50; i++ )); do
                pid_alive "${name}" || break
                sleep 0.1
            done
        fi
    fi
    rm -f "${PID_DIR}/${name}.pid" "${PID_DIR}/${name}.exe"
}

# cgroup_dirs lists the node's cgroup directory in every v1 hierarchy.
cgroup_dirs() {
    local h
    for h in /sys/fs/cgroup/*/; do
        [[ -f "${h}cgroup.procs" ]] || continue
        echo "${h}${CGROUP_NAME}"
    done
}
