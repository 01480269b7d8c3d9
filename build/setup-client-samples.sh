#!/bin/bash
# What the Python and Node client samples need, installed once: Debian's gRPC for Python and
# the npm packages from client-samples/node/package-lock.json. Idempotent; run from anywhere.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
sudo=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then sudo="sudo"; fi
if ! /usr/bin/python3 -c "import grpc, grpc_tools" 2>/dev/null; then
  $sudo apt-get update -q >/dev/null || true
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q python3-grpcio python3-grpc-tools >/dev/null
fi
if [ ! -d "$root/client-samples/node/node_modules/@grpc/grpc-js" ]; then
  (cd "$root/client-samples/node" && npm ci --no-audit --no-fund --loglevel=error)
fi
