#!/usr/bin/env bash
# Certificates for Flagpole on a cluster without cert-manager, after
# kubectl apply -k artifacts/deploy:
#   1. a CA (ECDSA P-256, 10 years), made once and kept in CERTS_DIR;
#   2. a serving certificate for api.<namespace>.svc signed by it (1 year);
#   3. Secret flagpole-serving-cert (tls.crt, tls.key, ca.crt), created or
#      replaced: the running servers reload it, no restart needed;
#   4. the APIService v1beta1.flagpole.dev's caBundle set to the CA.
# Run it again to renew the serving certificate: the CA is reused, so the
# caBundle stays the same. Delete CERTS_DIR's ca.* to make a new CA (the
# APIService trusts only the new one from the moment it is patched).
#
# Needs kubectl (the current context, or KUBECONFIG) and openssl.
# Environment:
#   NAMESPACE   Flagpole's namespace (flagpole-system)
#   SERVICE     the Service the APIService points at (api)
#   CERTS_DIR   where the CA and the certificates are kept (_output/flagpole-certs);
#               ca.key there is the key to Flagpole's trust: keep it safe or delete it
#   DAYS        serving certificate lifetime in days (365)
#   KUBECTL     kubectl to run (kubectl)
#   DRY_RUN     e.g. "server": pass --dry-run=<value> to kubectl; nothing changes
set -o errexit
set -o nounset
set -o pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
NAMESPACE="${NAMESPACE:-flagpole-system}"
SERVICE="${SERVICE:-api}"
CERTS_DIR="${CERTS_DIR:-${ROOT}/_output/flagpole-certs}"
DAYS="${DAYS:-365}"
KUBECTL="${KUBECTL:-kubectl}"
SECRET=flagpole-serving-cert
APISERVICE=v1beta1.flagpole.dev
dry_run=()
if [[ -n "${DRY_RUN:-}" ]]; then
    dry_run=("--dry-run=${DRY_RUN}")
fi
host="${SERVICE}.${NAMESPACE}.svc"

command -v openssl >/dev/null || { echo "deploy-certs: openssl not found" >&2; exit 1; }
umask 077
mkdir -p "${CERTS_DIR}"
chmod 700 "${CERTS_DIR}"
cd "${CERTS_DIR}"

cat > openssl.cnf <<CNF
[req]
distinguished_name = dn
prompt = no
[dn]
[ca]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[serving]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:${host}, DNS:${host}.cluster.local
authorityKeyIdentifier = keyid
subjectKeyIdentifier = hash
CNF

if [[ -s ca.crt && -s ca.key ]]; then
    echo "deploy-certs: reusing the CA in ${CERTS_DIR} ($(openssl x509 -in ca.crt -noout -enddate))"
else
    echo "deploy-certs: making a new CA in ${CERTS_DIR}"
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca.key
    openssl req -config openssl.cnf -x509 -new -key ca.key -subj "/CN=flagpole-ca" \
        -days 3650 -sha256 -extensions ca -set_serial "0x$(openssl rand -hex 16)" -out ca.crt
fi

openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out tls.key
openssl req -config openssl.cnf -new -key tls.key -subj "/CN=${host}" -out tls.csr
openssl x509 -req -in tls.csr -CA ca.crt -CAkey ca.key -set_serial "0x$(openssl rand -hex 16)" \
    -days "${DAYS}" -sha256 -extfile openssl.cnf -extensions serving -out tls.crt 2>/dev/null
rm -f tls.csr
openssl verify -CAfile ca.crt -purpose sslserver -verify_hostname "${host}" tls.crt >/dev/null
echo "deploy-certs: serving certificate for ${host}, $(openssl x509 -in tls.crt -noout -enddate)"

# Create or replace the Secret; the Deployment mounts it.
"${KUBECTL}" create secret generic "${SECRET}" --namespace "${NAMESPACE}" --type kubernetes.io/tls \
    --from-file=tls.crt=tls.crt --from-file=tls.key=tls.key --from-file=ca.crt=ca.crt \
    --dry-run=client -o yaml | "${KUBECTL}" apply "${dry_run[@]}" -f -

# The aggregator verifies Flagpole against this CA.
ca_bundle="$(base64 < ca.crt | tr -d '\n')"
"${KUBECTL}" patch apiservice "${APISERVICE}" --type merge "${dry_run[@]}" \
    -p "{\"spec\":{\"caBundle\":\"${ca_bundle}\",\"insecureSkipTLSVerify\":false}}"
echo "deploy-certs: done; watch: ${KUBECTL} get apiservice ${APISERVICE} (AVAILABLE True)"
