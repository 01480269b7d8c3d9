#!/bin/bash
# PostgreSQL for the shared-state tests (profile store contract, two sidecar replicas, two
# evaluation hosts on one queue): Debian's server binaries, installed once. The tests start their
# own server from them (initdb in a temporary folder, a free port), never the package's cluster.
set -euo pipefail
if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then exit 0; fi
sudo=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then sudo="sudo"; fi
$sudo apt-get update -q >/dev/null || true
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends postgresql >/dev/null
ls /usr/lib/postgresql/*/bin/initdb
