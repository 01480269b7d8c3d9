#!/bin/bash
# Lints the deployment files CI cannot build (no Docker engine here): the Dockerfiles with
# dockerfile-utils (from the npm registry, pinned, installed once under build/.tools).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tools="$root/build/.tools"
if [ ! -x "$tools/node_modules/.bin/dockerfile-utils" ]; then
  mkdir -p "$tools"
  (cd "$tools" && npm install --no-audit --no-fund --loglevel=error --no-save dockerfile-utils@0.16.3 >/dev/null)
fi
for file in "$root"/deploy/Dockerfile.*; do
  "$tools/node_modules/.bin/dockerfile-utils" lint "$file"
  echo "lint ok: ${file#$root/}"
done
