#!/bin/bash
# The sidecar's closed-loop throughput as a share of its own MEM core at the same settings: starts a
# sidecar with its defaults on loopback, warms it, and runs `unlearnable bench mem` (same batch size,
# strength, vocabulary and weights: the surrogates the sidecar serves) just before and just after the
# load, because this machine's speed drifts by up to 25 % within minutes. Prints both, the share
# against their mean, and the load tester's latency and batch figures. Not part of CI.
# Usage: bench/compare-load.sh [USERS] [POSTS_PER_USER] [BATCH]   (defaults 16 40 16)
# Also prints where the model's time went during the load, from the sidecar's own metrics: its busy share
# (time in MEM over the load's wall time), and the mean decode and finish (noise to full resolution and
# encoding) time per post, which in a closed loop the model waits through between batches.
# SOAK_WINDOW=S adds the sidecar's mean resident memory per S-second window to the load report. IMAGE=SIDE sets the
# posted JPEGs' side (default 512); IMAGE=64 leaves almost no image work, so the share shows what the rest costs.
# CHECKPOINT=FILE serves those weights instead of the default public models (e.g. OpenAI-named, config-less vitb32 or rn50
# safetensors) and needs PRESET=NAME, its architecture (vitb32, rn50, ...); BENCH_BATCHES=N sets bench mem's
# timed batches (default 6; at the released sizes a batch takes half a minute). PRECISION=bfloat16 runs both the
# sidecar (Sidecar:Model:Precision) and bench mem with bfloat16 products (default float32).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
users="${1:-16}" posts="${2:-40}" batch="${3:-16}" image="${IMAGE:-512}"
if [ -n "${CHECKPOINT:-}" ] && [ -z "${PRESET:-}" ]; then echo "CHECKPOINT needs PRESET (its architecture: vitb32, rn50, ...)" >&2; exit 2; fi
work="${TMPDIR:-/tmp}/unlearnable-compare-load"
mkdir -p "$work"
rm -f "$work"/profiles.db*   # a fresh profile store; the default surrogates made on the first run are kept
export MALLOC_ARENA_MAX=2    # as the images set it (see docs/performance.md, memory over a long run)
# The malloc thresholds the sidecar fixes for itself at start (GlibcMalloc.KeepFreedMemory), given to bench mem too, so
# that the core it is compared with runs under the same allocator.
export MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=268435456 MALLOC_TOP_PAD_=67108864

for project in src/Unlearnable.Sidecar src/Unlearnable.Cli client-samples/csharp/Unlearnable.LoadTest; do
  dotnet build "$root/$project" -c Release -v q >/dev/null
done
sidecar="$root/src/Unlearnable.Sidecar/bin/Release/net10.0/unlearnable-sidecar.dll"
cli="$root/src/Unlearnable.Cli/bin/Release/net10.0/unlearnable.dll"
loadtest="$root/client-samples/csharp/Unlearnable.LoadTest/bin/Release/net10.0/unlearnable-loadtest.dll"

served=()
[ -n "${CHECKPOINT:-}" ] && served+=("Sidecar__Model__Checkpoint=$(readlink -f "$CHECKPOINT")")
[ -n "${PRESET:-}" ] && served+=("Sidecar__Model__Preset=$PRESET")
precision="${PRECISION:-float32}"
served+=("Sidecar__Model__Precision=$precision")
env "${served[@]}" ASPNETCORE_ENVIRONMENT=Development Sidecar__Profiles__DatabasePath="$work/profiles.db" Sidecar__Batching__MaxBatchSize="$batch" \
  Kestrel__Endpoints__Grpc__Url=http://127.0.0.1:5051 Kestrel__Endpoints__Grpc__Protocols=Http2 \
  Kestrel__Endpoints__Http__Url=http://127.0.0.1:5052 Kestrel__Endpoints__Http__Protocols=Http1 \
  Logging__LogLevel__Default=Warning dotnet "$sidecar" >"$work/sidecar.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
# Up to 20 minutes: the first run makes the default members (about 13 minutes on 2 cores; later runs load them).
for _ in $(seq 1 600); do curl -sf http://127.0.0.1:5052/healthz >/dev/null && break; sleep 2; done
curl -sf http://127.0.0.1:5052/healthz >/dev/null || { echo "the sidecar did not become healthy; see $work/sidecar.log" >&2; exit 1; }
if [ -n "${CHECKPOINT:-}" ]; then
  checkpoint="$(readlink -f "$CHECKPOINT")"
  preset=(--preset "$PRESET")
elif [ -n "${PRESET:-}" ]; then
  checkpoint="$(ls "$work"/public-v*-"$PRESET"-[0-9]*x*-seed0-hardened-*.safetensors | grep -v '\.partial\.' | head -1)"
  preset=(--preset "$PRESET")
else
  # The default ensemble (PublicModel.DefaultEnsemble): the ResNet's weights as the sidecar serves them (hardened) and the
  # ViT beside it by architecture (bench mem's --also; a member's time does not depend on its weights).
  checkpoint="$(ls "$work"/public-v*-tiny-[0-9]*x*-seed0-hardened-*.safetensors | grep -v '\.partial\.' | head -1)"
  preset=(--preset tiny --also tiny-vit)
fi

dotnet "$loadtest" --users "$users" --posts 4 --image "$image" >/dev/null   # warm-up: JIT, first batches
bench() {
  dotnet "$cli" bench mem "${preset[@]}" --checkpoint "$checkpoint" --batch "$batch" --batches "${BENCH_BATCHES:-6}" \
    --strength Medium --vocabulary common-words --precision "$precision" --device cpu | grep -oE '^[0-9.]+ protected posts/s' | grep -oE '^[0-9.]+'
}
before="$(bench)"
# Sums and counts of the sidecar's timing histograms, as "name count sum" lines.
timings() {
  curl -sf http://127.0.0.1:5052/metrics | awk '
    /^unlearnable_optimise_seconds_(sum|count) / { split($1, n, "_"); t["optimise " n[4]] = $2 }
    /^unlearnable_codec_seconds_(sum|count)\{stage="(decode|finish)"\}/ { match($1, /stage="[a-z]+"/); stage = substr($1, RSTART + 7, RLENGTH - 8); split($1, n, "{"); k = n[1]; sub(/.*_/, "", k); t[stage " " k] = $2 }
    END { for (s in t) print s, t[s] }'
}
timings >"$work/timings.before"
started=$(date +%s.%N)
memory=()
[ -n "${SOAK_WINDOW:-}" ] && memory=(--server-pid "$pid" --memory-window "$SOAK_WINDOW")
load="$(dotnet "$loadtest" --users "$users" --posts "$posts" --image "$image" --seconds 7200 "${memory[@]}" | tail -1)"
wall=$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')
timings >"$work/timings.after"
after="$(bench)"
echo "bench mem (batch $batch, medium, common-words, the served surrogates): $before posts/s before, $after after"
echo "sidecar: $load"
sidecar_rate="$(grep -oE '= [0-9.]+ posts/s' <<<"$load" | grep -oE '[0-9.]+')"
awk -v s="$sidecar_rate" -v a="$before" -v b="$after" \
  'BEGIN { printf "share: %.0f %% of bench mem (%s posts/s against %.2f, the mean of before and after)\n", 100 * s / ((a + b) / 2), s, (a + b) / 2 }'
awk -v wall="$wall" 'NR == FNR { was[$1 " " $2] = $3; next } { now[$1 " " $2] = $3 - was[$1 " " $2] }
  END {
    printf "model busy %.0f %% of the load'"'"'s %.0f s (%d batches, %.2f s each); per post: decode %.1f ms, finish %.1f ms\n",
      100 * now["optimise sum"] / wall, wall, now["optimise count"], now["optimise sum"] / now["optimise count"],
      1000 * now["decode sum"] / now["decode count"], 1000 * now["finish sum"] / now["finish count"]
  }' "$work/timings.before" "$work/timings.after"
