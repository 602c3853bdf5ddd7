#!/usr/bin/env bash
# Without cert-manager: the Secrets deploy/k8s/cert-manager would issue, made with gantry-pki
# in PKI_DIR (kept there: the CA key is yours to guard). Then drop ../../cert-manager from the
# overlay's bases. overlays/dev's in-cluster PostgreSQL needs cert-manager; with this script use
# overlays/prod and your own PostgreSQL.
#
#   deploy/k8s/gantry-pki-secrets.sh PKI_DIR [NAMESPACE]      (GANTRY_PKI: the gantry-pki binary)
set -euo pipefail

dir=${1:?usage: gantry-pki-secrets.sh PKI_DIR [NAMESPACE]}
ns=${2:-gantry}
pki=${GANTRY_PKI:-gantry-pki}

[ -f "$dir/ca.key" ] || "$pki" ca --dir "$dir"
[ -f "$dir/api-server.key" ] || "$pki" issue --dir "$dir" --role api-server --days 90 \
  --dns "gantry-api,gantry-api.$ns,gantry-api.$ns.svc,gantry-api.$ns.svc.cluster.local,localhost" --out "$dir/api-server"
[ -f "$dir/admin-ops.key" ] || "$pki" issue --dir "$dir" --role admin --name ops --days 30 --out "$dir/admin-ops"

kubectl get namespace "$ns" >/dev/null 2>&1 || kubectl create namespace "$ns"
# apply NAME KEY=FILE...: create or update (rotation: re-issue the files, run this again).
apply() {
  local name=$1
  shift
  local args=()
  for pair in "$@"; do args+=("--from-file=$pair"); done
  kubectl -n "$ns" create secret generic "$name" "${args[@]}" --dry-run=client -o yaml | kubectl apply -f -
}
apply gantry-ca tls.crt="$dir/ca.crt" tls.key="$dir/ca.key" ca.crt="$dir/ca.crt"
apply gantry-api-tls tls.crt="$dir/api-server.crt" tls.key="$dir/api-server.key" ca.crt="$dir/ca.crt"
apply gantry-node-trust ca.crt="$dir/ca.crt"
apply gantry-admin-tls tls.crt="$dir/admin-ops.crt" tls.key="$dir/admin-ops.key" ca.crt="$dir/ca.crt"
