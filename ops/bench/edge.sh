#!/usr/bin/env bash
# Edge cache-hit throughput for 200 KiB and 2 MiB segments, against nginx
# serving the same objects as proxy_cache hits (ops/bench/nginx-proxy-cache.conf,
# once with sendfile on and once off; the ratio is against the better of
# the two), with the same load tool (wrk), connections and duration, in one
# run. All sit in front of the same hlscdn-origin; every measured request
# is a hit.
#
# The servers are pinned to SERVER_CORES cores (default: 1) and wrk to the
# others with taskset; the servers alternate over ROUNDS rounds (default 3)
# and the median ratios are reported: requests per second, and the
# server's CPU time per request (utime + stime from /proc), which is the
# one to compare on a small machine where wrk saturates first.
#
# Usage: ops/bench/edge.sh [seconds] [connections]   # throughput (default 10 s, 32)
#        SERVER_CORES=4 ROUNDS=3 ops/bench/edge.sh 8 256
#        ops/bench/edge.sh mem [GiB]                 # RSS per cached byte at ~GiB cached (default 1)
# Needs: nginx, wrk, curl, bc, ss, taskset (apt-get install nginx wrk curl bc iproute2 util-linux).
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -q -p origin-store -p edge-agent
work=$(mktemp -d)
chmod 755 "$work" # nginx workers run as nobody
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
. ops/bench/lib.sh
NGINX_PORT=$(free_port) # sendfile on
NGINX_NOSF_PORT=$(free_port) # sendfile off
ORIGIN_PORT=$(free_port)
EDGE_PORT=$(free_port)
mkdir -p "$work/store/bench"

start_origin() {
  ./target/release/hlscdn-origin --listen "127.0.0.1:$ORIGIN_PORT" --store "file://$work/store" \
    > "$work/origin.log" 2>&1 &
}
start_edge() { # cache bytes
  ${SERVER_CPUS:+taskset -c "$SERVER_CPUS"} ./target/release/hlscdn-edge --listen "127.0.0.1:$EDGE_PORT" --id bench \
    --origin "http://127.0.0.1:$ORIGIN_PORT" --cache-bytes "$1" > "$work/edge.log" 2>&1 &
  edge_pid=$!
}
wait_up() {
  for _ in $(seq 100); do curl -sf -o /dev/null "$1" && return; sleep 0.1; done
  echo "bench: $1 did not come up" >&2; exit 1
}
# Asks twice; the second answer must be a cache hit.
warm() {
  curl -sf -o /dev/null "$1"
  curl -sf -o /dev/null -D "$work/head.txt" "$1"
  grep -qi '^x-cache: *HIT' "$work/head.txt" || { echo "bench: $1 is not a cache hit" >&2; exit 1; }
}

if [ "${1:-}" = mem ]; then
  GIB=${2:-1}
  count=$((GIB * 512)) # 2 MiB objects
  size=2097152
  head -c "$size" /dev/urandom > "$work/store/bench/base.ts"
  # Distinct keys (the edge caches each on its own), one file on disk.
  for i in $(seq 1 "$count"); do ln "$work/store/bench/base.ts" "$work/store/bench/m-$i.ts"; done
  start_origin
  start_edge $(((GIB + 1) * 1073741824))
  wait_up "http://127.0.0.1:$ORIGIN_PORT/bench/base.ts"
  wait_up "http://127.0.0.1:$EDGE_PORT/healthz"
  rss() { awk '/^VmRSS:/ {print $2 * 1024}' "/proc/$edge_pid/status"; }
  base=$(rss)
  seq 1 "$count" | xargs -P 4 -I{} curl -sf -o /dev/null "http://127.0.0.1:$EDGE_PORT/bench/m-{}.ts"
  sleep 1.5 # one heartbeat: cache maintenance and gauges
  metric() { curl -s "http://127.0.0.1:$EDGE_PORT/metrics" | awk -v m="$1" '$1 == m {printf "%d", $2}'; }
  objects=$(metric hlscdn_edge_cache_objects)
  weighted=$(metric hlscdn_edge_cache_bytes)
  total=$(rss)
  cached=$((objects * size))
  echo "objects cached: $objects of $count ($cached body bytes; cache weight $weighted)"
  echo "edge VmRSS: $total bytes ($base before filling)"
  printf 'RSS per cached byte: %.3f   (RSS growth per cached byte: %.3f)\n' \
    "$(echo "$total / $cached" | bc -l)" "$(echo "($total - $base) / $cached" | bc -l)"
  exit 0
fi

SECS=${1:-10}
CONNS=${2:-32}
ROUNDS=${ROUNDS:-3}
split_cores
head -c 204800 /dev/urandom > "$work/store/bench/seg-200k.ts"
head -c 2097152 /dev/urandom > "$work/store/bench/seg-2m.ts"
start_nginx() { # port, sendfile on|off
  local prefix="$work/nginx-$2"
  mkdir -p "$prefix"
  sed -e "s#ORIGIN_PORT#$ORIGIN_PORT#" -e "s#PORT#$1#" -e "s#PREFIX#$prefix#g" -e "s#SENDFILE#$2#" \
    -e "s#worker_processes auto;#worker_processes $SERVER_CORES;#" \
    ops/bench/nginx-proxy-cache.conf > "$prefix/nginx.conf"
  taskset -c "$SERVER_CPUS" nginx -c "$prefix/nginx.conf" -p "$prefix" &
}
start_origin
start_nginx "$NGINX_PORT" on
nginx_on=$!
start_nginx "$NGINX_NOSF_PORT" off
nginx_off=$!
start_edge 1073741824
wait_up "http://127.0.0.1:$ORIGIN_PORT/bench/seg-200k.ts"
wait_up "http://127.0.0.1:$EDGE_PORT/healthz"
for seg in seg-200k seg-2m; do
  for port in "$NGINX_PORT" "$NGINX_NOSF_PORT" "$EDGE_PORT"; do
    warm "http://127.0.0.1:$port/bench/$seg.ts"
  done
done
nginx_pids() { echo "$1 $(pgrep -P "$1" | tr '\n' ' ')"; }

results="$work/results.txt"
for round in $(seq "$ROUNDS"); do
  for seg in seg-200k seg-2m; do
    read -r on_rps on_us on_p99 < <(measure "nginx-sendfile-$seg-$round" "$(nginx_pids "$nginx_on")" \
      "http://127.0.0.1:$NGINX_PORT/bench/$seg.ts")
    read -r off_rps off_us off_p99 < <(measure "nginx-nosendfile-$seg-$round" "$(nginx_pids "$nginx_off")" \
      "http://127.0.0.1:$NGINX_NOSF_PORT/bench/$seg.ts")
    read -r e_rps e_us e_p99 < <(measure "edge-$seg-$round" "$edge_pid" "http://127.0.0.1:$EDGE_PORT/bench/$seg.ts")
    printf 'round %s %s: edge %s req/s (%.0f µs CPU, p99 %s)  nginx sendfile %s req/s (%.0f µs, p99 %s)  nginx no sendfile %s req/s (%.0f µs, p99 %s)\n' \
      "$round" "$seg" "$e_rps" "$e_us" "$e_p99" "$on_rps" "$on_us" "$on_p99" "$off_rps" "$off_us" "$off_p99"
    best_rps=$(echo "if ($on_rps > $off_rps) $on_rps else $off_rps" | bc -l)
    best_us=$(echo "if ($on_us < $off_us) $on_us else $off_us" | bc -l)
    echo "$seg $(echo "$e_rps / $best_rps" | bc -l) $(echo "$best_us / $e_us" | bc -l)" >> "$results"
  done
done
echo
for seg in seg-200k seg-2m; do
  printf 'edge/best nginx, %s, on %s server core(s), median of %s rounds: requests/s %.2f, per-request CPU (nginx µs / edge µs) %.2f\n' \
    "$seg" "$SERVER_CORES" "$ROUNDS" "$(awk -v s="$seg" '$1 == s {print $2}' "$results" | median)" \
    "$(awk -v s="$seg" '$1 == s {print $3}' "$results" | median)"
done
