#!/bin/bash
# Lints the deployment files CI cannot run (no Docker engine or cluster here):
# - the Dockerfiles, with dockerfile-utils (from the npm registry, pinned);
# - the Kubernetes overlays, rendered with kubectl kustomize from Debian's kubernetes-client (the
#   package's kubectl unpacked under build/.tools, beside any kubectl the machine has; the
#   manifests are written for its kustomize 2.0 and render the same with later ones).
# - every rendered object against the Kubernetes API's JSON schemas (build/validate-manifests.mjs).
# The rendered manifests are then checked by DeploymentManifestTests (names, selectors, ports,
# probes, security, drain), which render them again with the same kubectl.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tools="$root/build/.tools"
if [ ! -x "$tools/node_modules/.bin/dockerfile-utils" ] || [ ! -d "$tools/node_modules/@kubernetes-models/prometheus-operator" ]; then
  mkdir -p "$tools"
  (cd "$tools" && npm install --no-audit --no-fund --loglevel=error --no-save dockerfile-utils@0.16.3 \
    kubernetes-models@5.1.0 @kubernetes-models/prometheus-operator@6.0.0 js-yaml@4.1.0 >/dev/null)
fi
for file in "$root"/deploy/Dockerfile.*; do
  "$tools/node_modules/.bin/dockerfile-utils" lint "$file"
  echo "lint ok: ${file#$root/}"
done

kubectl="$tools/kubernetes/usr/bin/kubectl"
if [ ! -x "$kubectl" ]; then
  download="$(mktemp -d)"
  (cd "$download" && chmod 777 . && apt-get download -q kubernetes-client >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null 2>&1 || true; apt-get download -q kubernetes-client >/dev/null; })
  dpkg -x "$download"/kubernetes-client_*.deb "$tools/kubernetes"
  rm -rf "$download"
fi
# Every overlay rendered, then each object checked against the API's schemas.
cp "$root/build/validate-manifests.mjs" "$tools/"
rendered="$(mktemp -d)"
for overlay in overlays/cpu overlays/gpu overlays/kind examples/backend-with-sidecar monitoring; do
  "$kubectl" kustomize "$root/deploy/kubernetes/$overlay" > "$rendered/${overlay//\//-}.yaml"
  echo "render ok: deploy/kubernetes/$overlay"
done
node "$tools/validate-manifests.mjs" "$rendered"/*.yaml
rm -rf "$rendered"
