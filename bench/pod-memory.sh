#!/bin/bash
# The sidecar's memory at each pod size the manifests ship, measured the way the pod would run: the overlay rendered,
# the sidecar container's CPU request, memory limit and settings taken from it, the sidecar started inside a memory
# cgroup with that limit (its start-up check reads the same limit) and with DOTNET_PROCESSOR_COUNT at the request, its
# public model prepared before start as the image's is, then flooded with the load tester: 32 streams x 8 posts plus
# 200 unary posts at once at 12 megapixels, and (where the pod accepts larger) 8 streams x 2 posts plus 16 unary posts
# at the largest image it accepts. Prints, per pod and flood, what
# was protected and refused, the process's peak resident memory, the cgroup's peak (page cache included), how often
# the limit was hit, and whether the kernel killed anything. Not part of CI: it needs root and cgroup v1's memory
# controller (as on the development machine; under cgroup v2 run it in a delegated subtree instead), ports 5051 and
# 5052 free, takes about 10 minutes, and loads the machine.
# Usage (as root): bench/pod-memory.sh [OVERLAY...]   (default: overlays/kind overlays/cpu)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
overlays=("$@"); [ ${#overlays[@]} -gt 0 ] || overlays=(overlays/kind overlays/cpu)
work="$(mktemp -d "${TMPDIR:-/tmp}/pod-memory.XXXXXX")"
kubectl="$root/build/.tools/kubernetes/kubectl"
[ -x "$kubectl" ] || "$root/build/lint-deploy.sh" >/dev/null
for project in src/Unlearnable.Sidecar client-samples/csharp/Unlearnable.LoadTest; do dotnet build "$root/$project" -c Release -v q >/dev/null; done
sidecar="$root/src/Unlearnable.Sidecar/bin/Release/net10.0/unlearnable-sidecar.dll"
loadtest="$root/client-samples/csharp/Unlearnable.LoadTest/bin/Release/net10.0/unlearnable-loadtest.dll"
export MALLOC_ARENA_MAX=2   # as the image sets it

# A child of this shell's own memory cgroup (v1).
own="$(awk -F: '$2 == "memory" { print $3 }' /proc/self/cgroup)"
parent="/sys/fs/cgroup/memory$own"
[ -n "$own" ] && [ -f "$parent/memory.limit_in_bytes" ] || { echo "needs cgroup v1's memory controller (found none for this shell)" >&2; exit 2; }
if (exec 3<>/dev/tcp/127.0.0.1/5051) 2>/dev/null || (exec 3<>/dev/tcp/127.0.0.1/5052) 2>/dev/null; then
  echo "ports 5051 and 5052 must be free (is another sidecar running?)" >&2; exit 2
fi
# Whatever is still in a pod's cgroup is killed on the way out, however the script ends.
cleanup() {
  for group in "$parent"/unlearnable-pod-*; do
    [ -d "$group" ] || continue
    xargs -r kill -9 < "$group/cgroup.procs" 2>/dev/null || true; sleep 1; rmdir "$group" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

prepared="$work/models"
echo "preparing the public model (as the image build does)"
dotnet "$sidecar" --prepare-model "$prepared" >/dev/null

for overlay in "${overlays[@]}"; do
  # The sidecar container as the overlay renders it: CPU request, memory limit, plain-valued settings.
  "$kubectl" kustomize "$root/deploy/kubernetes/$overlay" > "$work/rendered.yaml"
  NODE_PATH="$root/build/.tools/node_modules" node -e '
    const yaml = require("js-yaml"), fs = require("fs");
    const deployment = yaml.loadAll(fs.readFileSync(process.argv[1], "utf8"))
      .find(o => o && o.kind === "Deployment" && o.metadata.name === "unlearnable-sidecar");
    const c = deployment.spec.template.spec.containers.find(c => c.name === "sidecar");
    const quantity = q => { const m = /^(\d+)(Mi|Gi)?$/.exec(q); return Number(m[1]) * ({ Mi: 2 ** 20, Gi: 2 ** 30 }[m[2]] || 1); };
    console.log(`CPUS=${parseInt(c.resources.requests.cpu)}`);
    console.log(`LIMIT=${quantity(c.resources.limits.memory)}`);
    for (const e of c.env) if (e.value !== undefined && e.name.startsWith("Sidecar__") && !e.name.includes("Store__"))
      console.log(`SETTING=${e.name}=${e.value}`);
  ' "$work/rendered.yaml" > "$work/pod.env"
  cpus="$(sed -n 's/^CPUS=//p' "$work/pod.env")"; limit="$(sed -n 's/^LIMIT=//p' "$work/pod.env")"
  mapfile -t settings < <(sed -n 's/^SETTING=//p' "$work/pod.env")
  largest="$(printf '%s\n' "${settings[@]}" | sed -n 's/^Sidecar__Limits__MaxImagePixels=//p')"; largest="${largest:-50000000}"
  largest_mp="$(awk -v p="$largest" 'BEGIN { m = p / 1e6; if (m > 50) m = 50; printf "%.1f", m - 0.1 }')"

  floods=("12 32,8,200")
  awk -v m="$largest_mp" 'BEGIN { exit !(m > 12.5) }' && floods+=("$largest_mp 8,2,16")
  for flood_spec in "${floods[@]}"; do
    read -r megapixels shape <<<"$flood_spec"
    group="$parent/unlearnable-pod-${overlay//\//-}-$megapixels"
    mkdir -p "$group"
    echo "$limit" > "$group/memory.limit_in_bytes"
    data="$work/data-$RANDOM"; mkdir -p "$data"
    ( echo $BASHPID > "$group/cgroup.procs"
      exec env "${settings[@]}" DOTNET_PROCESSOR_COUNT="$cpus" ASPNETCORE_ENVIRONMENT=Production \
        Sidecar__Auth__ApiKeys__0=pod-memory-key Sidecar__Profiles__DatabasePath="$data/sidecar.db" \
        Sidecar__Model__PreparedDirectory="$prepared" \
        Kestrel__Endpoints__Grpc__Url=http://127.0.0.1:5051 Kestrel__Endpoints__Grpc__Protocols=Http2 \
        Kestrel__Endpoints__Http__Url=http://127.0.0.1:5052 Kestrel__Endpoints__Http__Protocols=Http1 \
        dotnet "$sidecar" ) > "$data/sidecar.log" 2>&1 &
    pid=$!
    for _ in $(seq 120); do dotnet "$sidecar" --probe http://127.0.0.1:5052/healthz >/dev/null 2>&1 && break; sleep 1; done
    kill -0 $pid 2>/dev/null || { cat "$data/sidecar.log"; echo "$overlay: the sidecar did not start" >&2; exit 1; }
    code=0; report="$(timeout 300 dotnet "$loadtest" --address http://127.0.0.1:5051 --api-key pod-memory-key --flood "$shape" \
      --megapixels "$megapixels" --server-pid $pid 2>&1)" || code=$?
    flood="$(grep '^flood:' <<<"$report" || true)"
    [ $code = 124 ] && flood="did not finish within 300 s"
    [ -n "$flood" ] || flood="load tester failed ($code): $(tail -n 3 <<<"$report")"
    alive=yes; kill -0 $pid 2>/dev/null || alive=no
    peak="$(cat "$group/memory.max_usage_in_bytes")"; hits="$(cat "$group/memory.failcnt")"
    kills="$(awk '$1 == "oom_kill" { print $2 }' "$group/memory.oom_control")"
    printf '%s: %s CPU, limit %d MiB, %s MP flood: %s\n  cgroup peak %d MiB (page cache included), limit hit %s times, OOM kills %s, sidecar alive after: %s\n' \
      "$overlay" "$cpus" $((limit >> 20)) "$megapixels" "${flood:-no report}" $((peak >> 20)) "$hits" "${kills:-?}" "$alive"
    kill -TERM $pid 2>/dev/null || true; wait $pid 2>/dev/null || true
    xargs -r kill -9 < "$group/cgroup.procs" 2>/dev/null || true; sleep 1
    rmdir "$group" 2>/dev/null || true
  done
done
