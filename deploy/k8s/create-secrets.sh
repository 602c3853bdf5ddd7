#!/usr/bin/env bash
# The Secrets Gantry's manifests read and no tool issues: the cluster join token, the first
# admin API key and, for overlays/prod, the database connection string. Random values come from
# /dev/urandom and go to kubectl through files, never through argv. Existing Secrets are kept
# (rotate them as deploy/README.md says).
#
#   deploy/k8s/create-secrets.sh [--namespace NS] [--database-url URL]
set -euo pipefail

ns=gantry
database_url=
while [ $# -gt 0 ]; do
  case "$1" in
    --namespace) ns=$2; shift 2 ;;
    --database-url) database_url=$2; shift 2 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "create-secrets.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

kubectl get namespace "$ns" >/dev/null 2>&1 || kubectl create namespace "$ns"

# create NAME KEY: a Secret with one key, its value read from standard input.
create() {
  if kubectl -n "$ns" get secret "$1" >/dev/null 2>&1; then
    echo "secret $1 exists; kept"
    cat >/dev/null
    return
  fi
  local file
  file=$(mktemp)
  chmod 600 "$file"
  cat >"$file"
  kubectl -n "$ns" create secret generic "$1" --from-file="$2=$file"
  rm -f "$file"
}

random() { head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'; }

random | create gantry-join-token token
random | create gantry-worker-join-token token
random | create gantry-admin-key key
if [ -n "$database_url" ]; then
  printf '%s' "$database_url" | create gantry-database url
fi
echo "the admin API key: kubectl -n $ns get secret gantry-admin-key -o jsonpath='{.data.key}' | base64 -d"
