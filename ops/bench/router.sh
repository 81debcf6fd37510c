#!/usr/bin/env bash
# Rewritten media playlists served by one router, against nginx serving the
# same bytes as a static file: same load tool (wrk), same connections, same
# machine, one run.
#
# The router answers per viewer: SESSIONS distinct sessions (default 10 000,
# each minted by a real master request) rotate through a wrk Lua script, so
# every request reads its session, chooses the edge, signs the token and
# renders the template. nginx serves a static copy of one such answer.
#
# The servers are pinned to SERVER_CORES cores (default: 1) and wrk to the
# others with taskset; the two servers alternate over ROUNDS rounds (default
# 3) and the median ratio is reported. Two figures per run: requests per
# second, and the server's CPU time per request (utime + stime from /proc),
# which is the one to compare on a small machine where wrk saturates first.
#
# Usage: ops/bench/router.sh [seconds] [connections]
#        SERVER_CORES=4 ROUNDS=3 SESSIONS=10000 ops/bench/router.sh 8 256
#        PERF=router.perf ops/bench/router.sh   # also profiles the router's first round (perf record -g)
# Needs: nginx, wrk, curl, bc, taskset (apt-get install nginx wrk curl bc util-linux).
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS=${1:-10}
CONNS=${2:-32}
ROUNDS=${ROUNDS:-3}
SESSIONS=${SESSIONS:-10000}
cargo build --release -q -p origin-store -p router
work=$(mktemp -d)
chmod 755 "$work"
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
. ops/bench/lib.sh
split_cores
ORIGIN_PORT=$(free_port)
ROUTER_PORT=$(free_port)
NGINX_PORT=$(free_port)
mkdir -p "$work/static"

./target/release/hlscdn-origin --listen "127.0.0.1:$ORIGIN_PORT" --store "file://$work/store" --publish-demo \
  > "$work/origin.log" 2>&1 &
taskset -c "$SERVER_CPUS" ./target/release/hlscdn-router --listen "127.0.0.1:$ROUTER_PORT" \
  --origin "http://127.0.0.1:$ORIGIN_PORT" \
  --fleet-token bench-fleet-token-0123456789 --signing-key k1:bench-signing-secret-0123456789 \
  --edge edge-1=http://127.0.0.1:19001 --edge edge-2=http://127.0.0.1:19002 --edge edge-3=http://127.0.0.1:19003 \
  > "$work/router.log" 2>&1 &
router_pid=$!
sed -e "s#ROOT#$work/static#" -e "s#PORT#$NGINX_PORT#" -e "s#PREFIX#$work#g" \
  -e "s#worker_processes auto;#worker_processes $SERVER_CORES;#" \
  -e 's#types { video/mp2t ts; }#types { application/vnd.apple.mpegurl m3u8; }#' \
  ops/bench/nginx-static.conf > "$work/nginx.conf"
taskset -c "$SERVER_CPUS" nginx -c "$work/nginx.conf" -p "$work" &
nginx_master=$!
for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$ROUTER_PORT/live/demo-1/master.m3u8" && break; sleep 0.1; done

# SESSIONS viewers: each master request mints a session; its first variant's
# media playlist URL (path and query) is one line of the rotation.
seq "$SESSIONS" | xargs -P 8 -I{} sh -c \
  "curl -sf http://127.0.0.1:$ROUTER_PORT/live/demo-1/master.m3u8 | grep -v '^#' | head -1" \
  | sed -e "s#^https\?://[^/]*##" -e "s#^\([^/]\)#/live/demo-1/\1#" > "$work/paths.txt"
echo "sessions: $(sort -u "$work/paths.txt" | wc -l) distinct media playlist URLs"
first=$(head -1 "$work/paths.txt")
curl -sf "http://127.0.0.1:$ROUTER_PORT$first" > "$work/static/index.m3u8"
echo "media playlist: $(wc -c < "$work/static/index.m3u8") bytes, $(grep -c '^#EXTINF' "$work/static/index.m3u8") segments"
rotation "$work/paths.txt" "$work/rotate.lua"

results="$work/results.txt"
for round in $(seq "$ROUNDS"); do
  read -r n_rps n_us n_p99 < <(measure "nginx-$round" "$nginx_master $(pgrep -P "$nginx_master" | tr '\n' ' ')" \
    "http://127.0.0.1:$NGINX_PORT/index.m3u8")
  if [ -n "${PERF:-}" ] && [ "$round" = 1 ]; then
    perf record -q ${PERF_CALLGRAPH:--g} -p "$router_pid" -o "$PERF" -- sleep "$SECS" 2>/dev/null &
  fi
  read -r r_rps r_us r_p99 < <(measure "router-$round" "$router_pid" "http://127.0.0.1:$ROUTER_PORT/" "$work/rotate.lua")
  printf 'round %s: router %s req/s (%.1f µs CPU, p99 %s)  nginx %s req/s (%.1f µs CPU, p99 %s)\n' \
    "$round" "$r_rps" "$r_us" "$r_p99" "$n_rps" "$n_us" "$n_p99"
  echo "$(echo "$r_rps / $n_rps" | bc -l) $(echo "$n_us / $r_us" | bc -l)" >> "$results"
done
echo
printf 'router/nginx on %s server core(s), %s sessions, median of %s rounds: requests/s %.2f, per-request CPU (nginx µs / router µs) %.2f\n' \
  "$SERVER_CORES" "$SESSIONS" "$ROUNDS" "$(awk '{print $1}' "$results" | median)" "$(awk '{print $2}' "$results" | median)"
