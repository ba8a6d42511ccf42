#!/usr/bin/env bash
# Start a throwaway etcd + kube-apiserver v1.20.2 on free loopback ports, with the structural KubeVirt
# CRDs installed. Everything lives in STATE_DIR; `stop.sh STATE_DIR` stops exactly what this started.
#
#   start.sh [--watch PID] STATE_DIR
#
#   --watch PID   also start a watchdog that runs stop.sh (and removes STATE_DIR) once PID has exited,
#                 so nothing outlives a test process that was killed before it could stop the server.
#
# stdout: KEY=VALUE lines (also written to STATE_DIR/env): SERVER, ADMIN_KUBECONFIG, USER_KUBECONFIG,
# USER_NAME, ADMIN_NAME, CA_FILE, APISERVER_PID, ETCD_PID, ETCD_URL.
# Environment: VMMEM_KUBE_APISERVER=path to use that binary instead of building/caching one
# (build.sh); VMMEM_APISERVER_READY_TIMEOUT (seconds, default 180); KUBECTL (default kubectl; empty:
# create the CRDs with curl); VMMEM_APISERVER_ADDRESS (default 127.0.0.1: the address it listens on,
# e.g. a network namespace's address for the real node of tests/node); VMMEM_APISERVER_EXTRA_ARGS
# (more kube-apiserver flags, split on spaces); VMMEM_APISERVER_AUTHORIZATION_MODE (default RBAC).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ADDRESS="${VMMEM_APISERVER_ADDRESS:-127.0.0.1}"
read -r -a EXTRA_ARGS <<<"${VMMEM_APISERVER_EXTRA_ARGS:-}"
AUTHORIZATION_MODE="${VMMEM_APISERVER_AUTHORIZATION_MODE:-RBAC}"

WATCH=
while [ $# -gt 0 ]; do
    case "$1" in
    --watch) WATCH="$2"; shift 2 ;;
    -h | --help) sed -n '2,14p' "$0"; exit 0 ;;
    -*) echo "start.sh: unknown option $1" >&2; exit 2 ;;
    *) break ;;
    esac
done
[ $# -eq 1 ] || { echo "usage: start.sh [--watch PID] STATE_DIR" >&2; exit 2; }
mkdir -p "$1"
STATE="$(cd "$1" && pwd)"
[ ! -e "$STATE/pids" ] || { echo "start.sh: $STATE already holds a server (pids file)" >&2; exit 2; }

PIDS="$STATE/pids"
# shellcheck source=tests/lib/procs.sh
. "$HERE/../lib/procs.sh"
log() { echo "start.sh: $*" >&2; }
fail() {
    echo "start.sh: ERROR: $*" >&2
    local f
    for f in "$STATE/etcd.log" "$STATE/apiserver.log"; do
        [ -s "$f" ] && { echo "--- last lines of $(basename "$f"):" >&2; tail -n 15 "$f" >&2; }
    done
    "$HERE/stop.sh" "$STATE" >&2 || true
    exit 1
}
trap 'fail "interrupted"' INT TERM

# --- binaries ---------------------------------------------------------------------------------------
if [ -n "${VMMEM_KUBE_APISERVER:-}" ]; then
    APISERVER="$VMMEM_KUBE_APISERVER"
else
    APISERVER="$("$HERE/build.sh" | tail -n1)" || { echo "start.sh: ERROR: cannot build kube-apiserver (see above)" >&2; exit 1; }
fi
[ -x "$APISERVER" ] || { echo "start.sh: ERROR: kube-apiserver binary not executable: $APISERVER" >&2; exit 1; }
ETCD="$(command -v etcd || true)"
[ -n "$ETCD" ] || { echo "start.sh: ERROR: etcd not found (Debian package etcd-server; build.sh installs it)" >&2; exit 1; }
for tool in openssl curl base64; do
    command -v "$tool" >/dev/null || { echo "start.sh: ERROR: $tool not found" >&2; exit 1; }
done

# --- throwaway PKI (ECDSA P-256: RSA key generation would cost a CPU-second per start) ----------------
PKI="$STATE/pki"
mkdir -p "$PKI"
(
    cd "$PKI"
    umask 077
    ossl() { openssl "$@" 2>/dev/null; }
    mkca() { # name CN
        ossl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$1.key" -out "$1.crt" -days 3 -subj "/CN=$2" \
            -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
    }
    sign() { # ca name subject extensions...
        ossl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$2.key" -out "$2.csr" -subj "$3"
        printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" "${@:4}" >"$2.ext"
        ossl x509 -req -in "$2.csr" -CA "$1.crt" -CAkey "$1.key" -CAcreateserial -days 3 -out "$2.crt" -extfile "$2.ext"
        rm -f "$2.csr" "$2.ext"
    }
    mkca ca kubectl-vmmem-test-ca
    sign ca serving "/CN=kube-apiserver" "extendedKeyUsage=serverAuth" "subjectAltName=IP:127.0.0.1,IP:$ADDRESS,DNS:localhost"
    sign ca admin "/O=system:masters/CN=vmmem-admin" "extendedKeyUsage=clientAuth"
    sign ca user "/CN=vmmem-user" "extendedKeyUsage=clientAuth"
    # API aggregation: an aggregated API server (a stand-in for KubeVirt's virt-api serving
    # subresources.kubevirt.io) is reached as https://virt-api.kubevirt.svc through an ExternalName
    # Service to localhost, presents virt-api.crt, and gets the apiserver's front-proxy-client cert
    # with the user in X-Remote-User / X-Remote-Group headers.
    sign ca virt-api "/CN=virt-api.kubevirt.svc" "extendedKeyUsage=serverAuth" \
        "subjectAltName=DNS:virt-api.kubevirt.svc,DNS:localhost,IP:127.0.0.1"
    mkca front-proxy-ca kubectl-vmmem-test-front-proxy-ca
    sign front-proxy-ca front-proxy-client "/CN=front-proxy-client" "extendedKeyUsage=clientAuth"
    ossl ecparam -name prime256v1 -genkey -noout -out sa.key
    ossl ec -in sa.key -pubout -out sa.pub
) || fail "openssl failed to make the PKI"
chmod 0644 "$PKI"/*.crt

# --- etcd + kube-apiserver --------------------------------------------------------------------------
: >"$STATE/pids"
start_etcd() {
    free_port ETCD_PORT && free_port PEER_PORT || return 1
    rm -rf "$STATE/etcd"
    ETCD_URL="http://127.0.0.1:$ETCD_PORT"
    "$ETCD" --name vmmem --data-dir "$STATE/etcd" \
        --listen-client-urls "$ETCD_URL" --advertise-client-urls "$ETCD_URL" \
        --listen-peer-urls "http://127.0.0.1:$PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$PEER_PORT" \
        --initial-cluster "vmmem=http://127.0.0.1:$PEER_PORT" --quota-backend-bytes=1073741824 \
        </dev/null >"$STATE/etcd.log" 2>&1 &
    ETCD_PID=$!
    record etcd "$ETCD_PID"
    local i
    for i in $(seq 1 300); do
        alive "$ETCD_PID" || return 1
        if curl -fsS --max-time 2 "$ETCD_URL/health" 2>/dev/null | grep -q '"health":"true"'; then return 0; fi
        sleep 0.2
    done
    return 1
}

started=0
for attempt in 1 2 3; do
    if start_etcd; then started=1; break; fi
    log "etcd did not come up (attempt $attempt): $(tail -n 3 "$STATE/etcd.log" 2>/dev/null)"
    kill "$ETCD_PID" 2>/dev/null || true
    wait "$ETCD_PID" 2>/dev/null || true
done
[ "$started" = 1 ] || fail "etcd did not start; log: $STATE/etcd.log"

READY_TIMEOUT="${VMMEM_APISERVER_READY_TIMEOUT:-180}"
CURL_ADMIN=(curl -sS --max-time 5 --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key")

start_apiserver() {
    free_port PORT || return 1
    SERVER="https://$ADDRESS:$PORT"
    "$APISERVER" \
        --bind-address="$ADDRESS" --secure-port="$PORT" --insecure-port=0 \
        --etcd-servers="$ETCD_URL" \
        --client-ca-file="$PKI/ca.crt" \
        --tls-cert-file="$PKI/serving.crt" --tls-private-key-file="$PKI/serving.key" \
        --authorization-mode="$AUTHORIZATION_MODE" --anonymous-auth=false \
        --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
        --service-account-issuer=https://kubernetes.default.svc \
        --service-cluster-ip-range=10.96.0.0/12 --endpoint-reconciler-type=none --allow-privileged=true \
        --disable-admission-plugins=ServiceAccount \
        --requestheader-client-ca-file="$PKI/front-proxy-ca.crt" --requestheader-allowed-names=front-proxy-client \
        --requestheader-username-headers=X-Remote-User --requestheader-group-headers=X-Remote-Group \
        --requestheader-extra-headers-prefix=X-Remote-Extra- \
        --proxy-client-cert-file="$PKI/front-proxy-client.crt" --proxy-client-key-file="$PKI/front-proxy-client.key" \
        --cert-dir="$STATE/apiserver-certs" --profiling=false "${EXTRA_ARGS[@]}" \
        </dev/null >"$STATE/apiserver.log" 2>&1 &
    APISERVER_PID=$!
    record apiserver "$APISERVER_PID"
    local deadline=$((SECONDS + READY_TIMEOUT))
    while [ "$SECONDS" -lt "$deadline" ]; do
        alive "$APISERVER_PID" || return 1
        if [ "$("${CURL_ADMIN[@]}" "$SERVER/readyz" 2>/dev/null)" = ok ]; then return 0; fi
        sleep 0.3
    done
    return 2
}

t0=$SECONDS
started=0
for attempt in 1 2 3; do
    rc=0
    start_apiserver || rc=$?
    if [ "$rc" = 0 ]; then started=1; break; fi
    if [ "$rc" = 2 ]; then fail "kube-apiserver not ready after ${READY_TIMEOUT}s; log: $STATE/apiserver.log"; fi
    log "kube-apiserver exited (attempt $attempt): $(grep -m3 -iE 'error|fatal|bind' "$STATE/apiserver.log" 2>/dev/null)"
    wait "$APISERVER_PID" 2>/dev/null || true
done
[ "$started" = 1 ] || fail "kube-apiserver did not start; log: $STATE/apiserver.log"
log "kube-apiserver ready at $SERVER in $((SECONDS - t0)) s (pid $APISERVER_PID)"

# --- kubeconfigs ------------------------------------------------------------------------------------
b64() { base64 -w0 <"$1"; }
kubeconfig() { # user
    cat <<KC
apiVersion: v1
kind: Config
clusters:
- name: vmmem-test
  cluster:
    server: $SERVER
    certificate-authority-data: $(b64 "$PKI/ca.crt")
users:
- name: $2
  user:
    client-certificate-data: $(b64 "$PKI/$1.crt")
    client-key-data: $(b64 "$PKI/$1.key")
contexts:
- name: $2@vmmem-test
  context:
    cluster: vmmem-test
    user: $2
    namespace: default
current-context: $2@vmmem-test
KC
}
(umask 077 && kubeconfig admin vmmem-admin >"$STATE/admin.kubeconfig" && kubeconfig user vmmem-user >"$STATE/user.kubeconfig")

# --- structural KubeVirt CRDs -----------------------------------------------------------------------
# kubectl when there is one (KUBECTL= forces the plain HTTP way)
KUBECTL="${KUBECTL-kubectl}"
for crd in "$HERE"/crds/*.yaml; do
    if [ -n "$KUBECTL" ] && command -v "$KUBECTL" >/dev/null; then
        "$KUBECTL" --kubeconfig "$STATE/admin.kubeconfig" create -f "$crd" >"$STATE/crd.log" 2>&1 \
            || fail "kubectl create -f $(basename "$crd") failed: $(cat "$STATE/crd.log")"
    else
        code=$("${CURL_ADMIN[@]}" -o "$STATE/crd.log" -w '%{http_code}' -X POST -H 'Content-Type: application/yaml' \
            --data-binary @"$crd" "$SERVER/apis/apiextensions.k8s.io/v1/customresourcedefinitions") || code=000
        [ "$code" = 201 ] || fail "creating CRD $(basename "$crd") gave HTTP $code: $(cat "$STATE/crd.log")"
    fi
done
# Wait until every CRD is served (discovery lists its plural).
plurals=$(sed -n 's/^ *plural: *//p' "$HERE"/crds/*.yaml)
for i in $(seq 1 150); do
    disco=$("${CURL_ADMIN[@]}" "$SERVER/apis/kubevirt.io/v1" 2>/dev/null || true)
    missing=0
    for p in $plurals; do grep -qE "\"name\": *\"$p\"" <<<"$disco" || missing=1; done
    [ "$missing" = 0 ] && break
    [ "$i" = 150 ] && fail "KubeVirt CRDs not served after 30 s: $disco"
    sleep 0.2
done

# --- watchdog ---------------------------------------------------------------------------------------
[ -z "$WATCH" ] || start_watchdog "$HERE/stop.sh" "$WATCH"

cat >"$STATE/env" <<ENV
SERVER=$SERVER
ADMIN_KUBECONFIG=$STATE/admin.kubeconfig
USER_KUBECONFIG=$STATE/user.kubeconfig
ADMIN_NAME=vmmem-admin
USER_NAME=vmmem-user
CA_FILE=$PKI/ca.crt
VIRT_API_CERT=$PKI/virt-api.crt
VIRT_API_KEY=$PKI/virt-api.key
FRONT_PROXY_CA=$PKI/front-proxy-ca.crt
APISERVER_PID=$APISERVER_PID
ETCD_PID=$ETCD_PID
ETCD_URL=$ETCD_URL
ENV
cat "$STATE/env"
