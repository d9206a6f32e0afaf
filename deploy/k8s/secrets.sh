#!/bin/sh
# Prints the Secrets and the ConfigMap the manifests need, made from a keys folder
# (`lfaas keys init <folder>`), as YAML for `kubectl apply -f -`:
#
#   deploy/k8s/secrets.sh <keys-folder> [namespace] [cluster-domain] | kubectl apply -f -
#
#   lfaas-members        members.json, token.pub (and tokens-revoked.json): mounted by every role
#   lfaas-key-<role>     <role>.key, one Secret per member role: each pod mounts its own only
#                        (the monitor also mounts the routing key: it signs storage departures;
#                        the ingress's key only announces its URL to the routing nodes)
#   lfaas-admin-token    admin.token: the dashboard reads the registry with it
#   lfaas-addresses      LFAAS_ROUTING: the routing node's stable address with its public key
#
# The token signing key (token-signing.key) is not put in the cluster: make tokens where the
# keys folder lives (`lfaas token create --keys <folder> ...`). Nothing is sent anywhere: kubectl
# only formats (--dry-run=client). Run it again after `lfaas keys add/revoke` or `rotate-token`.
set -eu

if [ "$#" -lt 1 ] || [ "$#" -gt 3 ]; then
  echo "usage: $0 <keys-folder> [namespace (lfaas)] [cluster-domain (cluster.local)]" >&2
  exit 2
fi
keys=$1
namespace=${2:-lfaas}
domain=${3:-cluster.local}

for file in members.json token.pub admin.token routing.key storage.key scheduler.key executor.key monitor.key ingress.key; do
  if [ ! -f "$keys/$file" ]; then
    echo "$0: $keys/$file is missing: make the folder with \`lfaas keys init $keys\` (run on an older folder, it adds what is missing)" >&2
    exit 1
  fi
done

# The routing node's public key, from its key file (a z85 key holds no quote).
routing_key=$(sed -n 's/.*"publicKey" *: *"\([^"]*\)".*/\1/p' "$keys/routing.key")
if [ -z "$routing_key" ]; then
  echo "$0: $keys/routing.key holds no public key" >&2
  exit 1
fi

format() {
  kubectl create --dry-run=client -o yaml --namespace "$namespace" "$@"
  echo "---"
}

revoked=""
if [ -f "$keys/tokens-revoked.json" ]; then revoked="--from-file=tokens-revoked.json=$keys/tokens-revoked.json"; fi
# shellcheck disable=SC2086 # $revoked is one option or none
format secret generic lfaas-members --from-file="members.json=$keys/members.json" --from-file="token.pub=$keys/token.pub" $revoked
for role in routing storage scheduler executor monitor ingress; do
  format secret generic "lfaas-key-$role" --from-file="$role.key=$keys/$role.key"
done
format secret generic lfaas-admin-token --from-file="admin.token=$keys/admin.token"
format configmap lfaas-addresses --from-literal="LFAAS_ROUTING=tcp://lfaas-routing-0.lfaas-routing.$namespace.svc.$domain:7000#$routing_key"
