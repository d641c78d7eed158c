# Sourced by hack/node.sh: the configuration files of containerd, the CNI
# network, the kubelet and kube-proxy, written into CONF_DIR.

write_configs() {
    mkdir -p "${CONF_DIR}/cni"
    write_containerd_config
    write_cni_config
    write_kubelet_config
    write_kube_proxy_config
    # Pods with dnsPolicy Default get this: the node has no upstream DNS.
    : >"${CONF_DIR}/resolv.conf"
}

write_containerd_config() {
    cat >"${CONF_DIR}/containerd.toml" <<EOF
# containerd 1.6 (Debian) for the real node. Everything it keeps is below
# ${STATE_DIR} and ${RUN_DIR}.
version = 2
root = "${STATE_DIR}/containerd"
state = "${RUN_DIR}/containerd"
# Its own oom_score_adj is left alone: this machine has no CAP_SYS_RESOURCE.
oom_score = 0
disabled_plugins = [
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.internal.v1.tracing",
  "io.containerd.tracing.processor.v1.otlp",
]

[grpc]
  address = "${CONTAINERD_SOCK}"

[ttrpc]
  address = "${CONTAINERD_SOCK}.ttrpc"

[debug]
  address = ""

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "${STATE_DIR}/opt"

[plugins."io.containerd.grpc.v1.cri"]
  # No registry is reachable: the sandbox image is imported, never pulled.
  sandbox_image = "${PAUSE_IMAGE}"
  # Without CAP_SYS_RESOURCE runc cannot set an oom_score_adj below
  # containerd's own, and every sandbox fails with "can't get final child's
  # PID from pipe: EOF"; this keeps the requested value at or above it.
  restrict_oom_score_adj = true
  # The Pods' network namespaces are bound below the state directory, in the
  # node's mount namespace, not in the machine's /run/netns.
  netns_mounts_under_state_dir = true
  # No AppArmor profile is loaded into the machine's kernel.
  disable_apparmor = true
  enable_selinux = false
  disable_hugetlb_controller = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"

  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"

    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "/usr/sbin/runc"
        Root = "${RUN_DIR}/runc"
        # cgroupfs, as the kubelet (containerd 1.6 cannot tell it its driver).
        SystemdCgroup = false

  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "${CNI_BIN_DIR}"
    conf_dir = "${CONF_DIR}/cni"
    max_conf_num = 1
EOF
}

write_cni_config() {
    cat >"${CONF_DIR}/cni/10-${NODE_NAME}.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "${NODE_NAME}",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni0",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "${STATE_DIR}/cni/networks",
        "ranges": [[{"subnet": "${POD_CIDR}", "gateway": "${POD_GATEWAY}"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
}

write_kubelet_config() {
    cat >"${CONF_DIR}/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: ${NODE_IP}
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: ${PKI_DIR}/ca.crt}
authorization: {mode: Webhook}
tlsCertFile: ${PKI_DIR}/kubelet-serving.crt
tlsPrivateKeyFile: ${PKI_DIR}/kubelet-serving.key
rotateCertificates: false
containerRuntimeEndpoint: unix://${CONTAINERD_SOCK}
# kubelet 1.37 refuses cgroup v1 unless told otherwise; containerd 1.6 answers
# Unimplemented when asked for its cgroup driver, so the kubelet uses this.
failCgroupV1: false
cgroupDriver: cgroupfs
# Every Pod's cgroup is below /${CGROUP_NAME}, which down removes.
cgroupRoot: /${CGROUP_NAME}
# The kubelet would otherwise set six kernel-wide sysctls (vm.overcommit_memory,
# kernel.panic_on_oops, ...) on a machine others share; it sees the values it
# wants in the node's mount namespace (hack/node.sh), and only checks them.
protectKernelDefaults: true
clusterDNS: [${DNS_SERVICE_IP}]
clusterDomain: ${CLUSTER_DOMAIN}
resolvConf: ${CONF_DIR}/resolv.conf
podLogsDir: ${STATE_DIR}/pod-logs
volumePluginDir: ${STATE_DIR}/volume-plugins
failSwapOn: false
# The images are imported, not pulled: never garbage-collect them, and evict
# only when the machine is really out of room.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: 100Mi
  nodefs.available: "1%"
  imagefs.available: "1%"
  nodefs.inodesFree: "1%"
maxPods: 40
serializeImagePulls: false
EOF
}

write_kube_proxy_config() {
    cat >"${CONF_DIR}/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: ${CONF_DIR}/kube-proxy.kubeconfig
hostnameOverride: ${NODE_NAME}
mode: iptables
clusterCIDR: ${POD_CIDR}
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
nodePortAddresses: ["${NODE_IP}/32"]
# Leave the machine-wide conntrack sysctls and kube-proxy's oom_score_adj
# (which needs CAP_SYS_RESOURCE) alone.
oomScoreAdj: 0
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
iptables:
  localhostNodePorts: false
EOF
}
