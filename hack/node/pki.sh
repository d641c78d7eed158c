# Sourced by hack/node.sh: the node's certificates and kubeconfigs, made
# with openssl (ECDSA P-256), as kubeadm lays them out:
#   ca            signs kube-apiserver's and the kubelet's serving
#                 certificates and every client certificate;
#   front-proxy-ca  signs the aggregator's client certificate (what Flagpole's
#                 requestheader authentication trusts);
#   sa.key/sa.pub ServiceAccount token signing.
# Clients: admin (system:masters), kube-controller-manager, kube-scheduler,
# kube-proxy, the kubelet (system:node:NODE_NAME), and kube-apiserver's own
# client of the kubelet.

# issue NAME CN O EXT [SAN]: a key and a certificate signed by SIGNER (ca by
# default) for 1 year, with the extensions of section EXT of openssl.cnf.
issue() {
    local name="$1" cn="$2" org="$3" ext="$4" san="${5:-}" signer="${SIGNER:-ca}"
    local subj="/CN=${cn}"
    [[ -n "${org}" ]] && subj="/O=${org}${subj}"
    openssl ecparam -name prime256v1 -genkey -noout -out "${name}.key" 2>/dev/null
    openssl req -new -key "${name}.key" -subj "${subj}" -config openssl.cnf -out "${name}.csr" 2>/dev/null
    {
        echo "[ext]"
        sed -n "/^\[${ext}\]/,/^\[/{/^\[/d;p}" openssl.cnf
        [[ -z "${san}" ]] || echo "subjectAltName = ${san}"
        echo "authorityKeyIdentifier = keyid"
    } >"${name}.ext"
    openssl x509 -req -in "${name}.csr" -CA "${signer}.crt" -CAkey "${signer}.key" -CAcreateserial \
        -days 365 -sha256 -extfile "${name}.ext" -extensions ext -out "${name}.crt" 2>/dev/null
    rm -f "${name}.csr" "${name}.ext"
}

# make_ca NAME CN
make_ca() {
    openssl ecparam -name prime256v1 -genkey -noout -out "$1.key" 2>/dev/null
    openssl req -x509 -new -key "$1.key" -subj "/CN=$2" -days 3650 -sha256 \
        -config openssl.cnf -extensions ca -out "$1.crt" 2>/dev/null
}

# kubeconfig FILE USER CERT
kubeconfig() {
    local file="$1" user="$2" cert="$3"
    cat >"${file}" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: ${NODE_NAME}
  cluster:
    server: https://${NODE_IP}:${APISERVER_PORT}
    certificate-authority: ${PKI_DIR}/ca.crt
users:
- name: ${user}
  user:
    client-certificate: ${PKI_DIR}/${cert}.crt
    client-key: ${PKI_DIR}/${cert}.key
contexts:
- name: ${NODE_NAME}
  context: {cluster: ${NODE_NAME}, user: ${user}}
current-context: ${NODE_NAME}
EOF
}

write_pki() {
    rm -rf "${PKI_DIR}"
    mkdir -p "${PKI_DIR}"
    chmod 700 "${PKI_DIR}"
    (
        cd "${PKI_DIR}"
        cat >openssl.cnf <<'CNF'
[req]
distinguished_name = dn
prompt = no
[dn]
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign, digitalSignature
subjectKeyIdentifier = hash
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
CNF
        make_ca ca "${NODE_NAME}-ca"
        make_ca front-proxy-ca "${NODE_NAME}-front-proxy-ca"
        issue apiserver kube-apiserver "" server \
            "DNS:kubernetes, DNS:kubernetes.default, DNS:kubernetes.default.svc, DNS:kubernetes.default.svc.${CLUSTER_DOMAIN}, DNS:localhost, IP:${NODE_IP}, IP:${KUBERNETES_SERVICE_IP}, IP:127.0.0.1"
        issue kubelet-serving "system:node:${NODE_NAME}" system:nodes server "DNS:${NODE_NAME}, IP:${NODE_IP}"
        issue admin "${NODE_NAME}-admin" system:masters client
        issue apiserver-kubelet-client kube-apiserver-kubelet-client system:masters client
        issue kube-controller-manager system:kube-controller-manager "" client
        issue kube-scheduler system:kube-scheduler "" client
        issue kube-proxy system:kube-proxy "" client
        issue kubelet "system:node:${NODE_NAME}" system:nodes client
        # The front proxy's client certificate is signed by its own CA.
        SIGNER=front-proxy-ca issue front-proxy-client front-proxy-client "" client
        openssl ecparam -name prime256v1 -genkey -noout -out sa.key 2>/dev/null
        openssl ec -in sa.key -pubout -out sa.pub 2>/dev/null
        rm -f ./*.srl
        chmod 600 ./*.key
    )
    kubeconfig "${KUBECONFIG_ADMIN}" admin admin
    local c
    for c in kube-controller-manager kube-scheduler kube-proxy kubelet; do
        kubeconfig "${CONF_DIR}/${c}.kubeconfig" "${c}" "${c}"
    done
}
