#!/usr/bin/env bash
# What redirect mode (`--segment-urls redirect`) costs per segment against
# direct mode, in one run on one machine:
#   - the extra round trip: latency of the router's 302 for a segment, next to
#     the latency of the segment itself from the edge (a cache hit), one
#     connection each (wrk -c1), so latency is a round trip, not queueing;
#   - router CPU per segment: CPU seconds the router process spends per 302,
#     next to its CPU per media playlist request (what every viewer already
#     costs it in both modes), under the same load (wrk -c32).
# Usage: ops/bench/redirect.sh [seconds]
# Needs: wrk, curl, bc (apt-get install wrk curl bc).
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS=${1:-10}
cargo build --release -q -p origin-store -p router -p edge-agent
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
. ops/bench/lib.sh
ORIGIN=$(free_port); ROUTER=$(free_port); EDGE=$(free_port)
TOKEN=bench-fleet-token-0123456789
./target/release/hlscdn-origin --listen "127.0.0.1:$ORIGIN" --store "file://$work/store" --publish-demo \
  > "$work/origin.log" 2>&1 &
./target/release/hlscdn-router --listen "127.0.0.1:$ROUTER" --origin "http://127.0.0.1:$ORIGIN" \
  --fleet-token "$TOKEN" --signing-key k1:bench-signing-secret-0123456789 --segment-urls redirect \
  --edge "edge-1=http://127.0.0.1:$EDGE" > "$work/router.log" 2>&1 &
router_pid=$!
./target/release/hlscdn-edge --listen "127.0.0.1:$EDGE" --id edge-1 --origin "http://127.0.0.1:$ORIGIN" \
  --signing-key k1:bench-signing-secret-0123456789 > "$work/edge.log" 2>&1 &
for _ in $(seq 100); do
  curl -sf -o /dev/null "http://127.0.0.1:$ROUTER/live/demo-1/master.m3u8" && break; sleep 0.1
done

variant=$(curl -sf "http://127.0.0.1:$ROUTER/live/demo-1/master.m3u8" | grep -v '^#' | head -1)
case "$variant" in http*) media=$variant ;; *) media="http://127.0.0.1:$ROUTER/live/demo-1/$variant" ;; esac
segment_path=$(curl -sf "$media" | grep '^/r/' | head -1)
redirect="http://127.0.0.1:$ROUTER$segment_path"
direct=$(curl -s -o /dev/null -w '%{redirect_url}' "$redirect")
curl -sf -o /dev/null "$direct"   # now cached on the edge
echo "redirect URL: $redirect"
echo "edge URL:     ${direct%%\?*}"

cpu() { awk '{print $14 + $15}' "/proc/$router_pid/stat"; }   # utime + stime, clock ticks
hz=$(getconf CLK_TCK)
run() { # name url connections
  local before after
  before=$(cpu)
  wrk -t1 -c"$3" -d"${SECS}s" --latency "$2" > "$work/$1.txt"
  after=$(cpu)
  echo "$(( after - before ))" > "$work/$1.cpu"
}
run rtt_redirect "$redirect" 1
run rtt_segment "$direct" 1
run load_redirect "$redirect" 32
run load_playlist "$media" 32

field() { awk -v k="$2" '$1 == k {print $2}' "$work/$1.txt"; }
requests() { awk '/requests in/ {print $1}' "$work/$1.txt"; }
per_req_us() { echo "$(cat "$work/$1.cpu") / $hz / $(requests "$1") * 1000000" | bc -l; }
echo
printf 'round trip, 1 connection: 302 from the router p50 %s p99 %s; segment hit from the edge p50 %s p99 %s\n' \
  "$(field rtt_redirect 50%)" "$(field rtt_redirect 99%)" "$(field rtt_segment 50%)" "$(field rtt_segment 99%)"
printf 'router CPU per request, 32 connections: 302 %.1f µs (%s req/s); media playlist %.1f µs (%s req/s)\n' \
  "$(per_req_us load_redirect)" "$(awk '/Requests\/sec/ {print $2}' "$work/load_redirect.txt")" \
  "$(per_req_us load_playlist)" "$(awk '/Requests\/sec/ {print $2}' "$work/load_playlist.txt")"
printf 'ratio router CPU per 302 / per media playlist: %.2f\n' \
  "$(echo "$(per_req_us load_redirect) / $(per_req_us load_playlist)" | bc -l)"
