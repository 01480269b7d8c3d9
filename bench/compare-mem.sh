#!/bin/bash
# The authors' batch MEM step in PyTorch (bench/authors_mem.py, Debian's python3-torch) and ours
# (unlearnable bench mem), one after the other on this machine, same preset, batch and steps;
# prints both and the ratio. Not part of CI. Usage: bench/compare-mem.sh [PRESET] [BATCH] [BATCHES] [bench mem options...]
# PRESET: tiny, tiny-vit, or the released sizes rn50 and vitb32 (one batch of 8 at vitb32 takes the reference ~2 minutes).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
preset="${1:-tiny}" batch="${2:-16}" batches="${3:-3}"
shift $(( $# < 3 ? $# : 3 ))
if ! /usr/bin/python3 -c "import torch" 2>/dev/null; then
  echo "needs Debian's python3-torch: apt-get install python3-torch" >&2; exit 2
fi
# Debian's torch does its matrix products through libblas.so.3, which is the (unoptimised) reference
# BLAS unless OpenBLAS is installed: 4x slower here, which would flatter us.
if ! readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3 | grep -q openblas; then
  echo "libblas.so.3 is not OpenBLAS: apt-get install libopenblas0-pthread (Debian makes it the BLAS)" >&2; exit 2
fi
theirs="$(/usr/bin/python3 "$root/bench/authors_mem.py" --preset "$preset" --batch "$batch" --batches "$batches")"
echo "$theirs"
dotnet build "$root/src/Unlearnable.Cli" -c Release -v q >/dev/null
ours="$(dotnet "$root/src/Unlearnable.Cli/bin/Release/net10.0/unlearnable.dll" bench mem --preset "$preset" --batch "$batch" --batches "$batches" --device cpu "$@")"
echo "$ours"
rate() { grep -oE '^[0-9.]+ protected posts/s' <<<"$1" | grep -oE '^[0-9.]+'; }
awk -v a="$(rate "$ours")" -v b="$(rate "$theirs")" 'BEGIN { printf "ours / authors'"'"' algorithm: %.2fx (%s vs %s posts/s)\n", a / b, a, b }'
