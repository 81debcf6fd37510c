#!/usr/bin/env bash
# The whole system under `hlscdn-loadtest players` load: one hlscdn-origin
# publishing the demo streams, two hlscdn-routers (peers), three hlscdn-edges,
# all release builds on loopback, then the load tester at growing viewer
# counts until a rung has a stall, an error or a player that gave up (or the
# list ends). Per rung: the summary line, the CPU each process used, and the
# JSON report in the output directory.
#
# Usage: loadtest/bench-system.sh [seconds per rung] [viewer counts...]
#        (default: 30 s; 50 100 200 400 800 1600 3200 6400)
# Env:   OUT=dir (default: a new temp dir, printed), KEEP_GOING=1 (do not stop
#        at the first rung that gives), ARRIVAL=R (viewers/s; default N/10),
#        CAPACITY=bits/s each edge advertises (default 10 Gbit/s: loopback
#        carries that, and the fleet stays under capacity at every rung).
# Needs: curl, ss, bc (apt-get install curl iproute2 bc).
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-30}
shift || true
COUNTS=("$@")
[ ${#COUNTS[@]} -gt 0 ] || COUNTS=(50 100 200 400 800 1600 3200 6400)
OUT=${OUT:-$(mktemp -d)}
CAPACITY=${CAPACITY:-10000000000}
mkdir -p "$OUT"
cargo build --release -q -p origin-store -p router -p edge-agent -p loadtest
BIN=target/release
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT

. ops/bench/lib.sh
wait_up() {
  for _ in $(seq 200); do curl -sf -o /dev/null "$1" && return; sleep 0.1; done
  echo "bench: $1 did not come up" >&2; tail -n 5 "$work"/*.log >&2; exit 1
}
TOKEN=bench-fleet-token-$RANDOM$RANDOM
ORIGIN=$(free_port); R1=$(free_port); R2=$(free_port)
E1=$(free_port); E2=$(free_port); E3=$(free_port)
declare -A PID

RUST_LOG=warn $BIN/hlscdn-origin --listen "127.0.0.1:$ORIGIN" --store "file://$work/store" --publish-demo \
  > "$work/origin.log" 2>&1 &
PID[origin]=$!
wait_up "http://127.0.0.1:$ORIGIN/healthz"
for r in "router-1 $R1 $R2" "router-2 $R2 $R1"; do
  set -- $r
  RUST_LOG=warn $BIN/hlscdn-router --listen "127.0.0.1:$2" --origin "http://127.0.0.1:$ORIGIN" \
    --fleet-token "$TOKEN" --peer "http://127.0.0.1:$3" > "$work/$1.log" 2>&1 &
  PID[$1]=$!
done
wait_up "http://127.0.0.1:$R1/healthz"
wait_up "http://127.0.0.1:$R2/healthz"
i=0
for port in $E1 $E2 $E3; do
  i=$((i + 1))
  RUST_LOG=warn $BIN/hlscdn-edge --listen "127.0.0.1:$port" --id "edge-$i" --origin "http://127.0.0.1:$ORIGIN" \
    --router "http://127.0.0.1:$R1" --fleet-token "$TOKEN" --capacity-bps "$CAPACITY" > "$work/edge-$i.log" 2>&1 &
  PID[edge-$i]=$!
done
for _ in $(seq 100); do
  fresh=$(curl -sf "http://127.0.0.1:$R2/api/v1/edges" | grep -o '"fresh":true' | wc -l || true)
  [ "$fresh" -ge 3 ] && break
  sleep 0.2
done
[ "$fresh" -ge 3 ] || { echo "bench: router-2 does not see three fresh edges" >&2; exit 1; }

# Busy and total jiffies of the whole machine.
machine() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8 }' /proc/stat; }
# CPU seconds a process has used (user + system).
cpu() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat" 2>/dev/null || echo 0; }
NAMES=(origin router-1 router-2 edge-1 edge-2 edge-3)

echo "cluster: origin :$ORIGIN, routers :$R1 :$R2, edges :$E1 :$E2 :$E3; reports in $OUT"
for n in "${COUNTS[@]}"; do
  declare -A before
  for name in "${NAMES[@]}"; do before[$name]=$(cpu "${PID[$name]}"); done
  read -r busy0 total0 < <(machine)
  rate=${ARRIVAL:-}
  args=(players --router "http://127.0.0.1:$R1" --router "http://127.0.0.1:$R2" --viewers "$n"
        --duration "${SECS}s" --origin "http://127.0.0.1:$ORIGIN" --json "$OUT/players-$n.json" --quiet)
  [ -n "$rate" ] && args+=(--arrival-rate "$rate")
  start=$(date +%s.%N)
  /usr/bin/time -f "%U %S" -o "$work/time" $BIN/hlscdn-loadtest "${args[@]}" > "$OUT/players-$n.txt"
  wall=$(echo "$(date +%s.%N) - $start" | bc)
  read -r busy1 total1 < <(machine)
  cores=$(nproc)
  busy=$(( 100 * (busy1 - busy0) / (total1 - total0) ))
  summary=$(grep '^summary:' "$OUT/players-$n.txt")
  usage=""
  for name in "${NAMES[@]}"; do
    used=$(echo "$(cpu "${PID[$name]}") - ${before[$name]}" | bc)
    usage+=" $name=$(echo "scale=0; 100 * $used / $wall" | bc)%"
  done
  tester=$(awk -v w="$wall" '{ printf "%.0f", 100 * ($1 + $2) / w }' "$work/time")
  echo "viewers $n: $summary"
  echo "  cpu (% of one core, over ${wall%.*} s):$usage loadtest=$tester%; machine busy $busy% of $cores cores"
  grep '^  error' "$OUT/players-$n.txt" || true
  if [ -z "${KEEP_GOING:-}" ] && ! echo "$summary" | grep -q ' stalls=0 .* gave_up=0 errors=0 '; then
    echo "gave at $n viewers (full table: $OUT/players-$n.txt)"
    break
  fi
done
