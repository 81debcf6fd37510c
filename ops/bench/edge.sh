#!/usr/bin/env bash
# Edge cache-hit throughput for 200 KiB and 2 MiB segments, against nginx
# serving the same objects as proxy_cache hits (ops/bench/nginx-proxy-cache.conf,
# once with sendfile on and once off; the ratio is against the faster),
# with the same load tool (wrk), connections and duration, in one run. All
# sit in front of the same hlscdn-origin; every measured request is a hit.
#
# Usage: ops/bench/edge.sh [seconds] [connections]   # throughput (default 10 s, 32)
#        ops/bench/edge.sh mem [GiB]                 # RSS per cached byte at ~GiB cached (default 1)
# Needs: nginx, wrk, curl, bc, ss (apt-get install nginx wrk curl bc iproute2).
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
  ./target/release/hlscdn-edge --listen "127.0.0.1:$EDGE_PORT" --id bench \
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
head -c 204800 /dev/urandom > "$work/store/bench/seg-200k.ts"
head -c 2097152 /dev/urandom > "$work/store/bench/seg-2m.ts"
start_nginx() { # port, sendfile on|off
  local prefix="$work/nginx-$2"
  mkdir -p "$prefix"
  sed -e "s#ORIGIN_PORT#$ORIGIN_PORT#" -e "s#PORT#$1#" -e "s#PREFIX#$prefix#g" -e "s#SENDFILE#$2#" \
    ops/bench/nginx-proxy-cache.conf > "$prefix/nginx.conf"
  nginx -c "$prefix/nginx.conf" -p "$prefix" &
}
start_origin
start_nginx "$NGINX_PORT" on
start_nginx "$NGINX_NOSF_PORT" off
start_edge 1073741824
# Both servers use every core (nginx: one worker per core; the edge: one
# tokio worker per core); wrk shares the machine with them, equally for both.
wait_up "http://127.0.0.1:$ORIGIN_PORT/bench/seg-200k.ts"
wait_up "http://127.0.0.1:$EDGE_PORT/healthz"
for seg in seg-200k seg-2m; do
  for port in "$NGINX_PORT" "$NGINX_NOSF_PORT" "$EDGE_PORT"; do
    warm "http://127.0.0.1:$port/bench/$seg.ts"
  done
done

run() {
  echo "== $2"
  wrk -t1 -c"$CONNS" -d"${SECS}s" --latency "$1" | tee "$work/$2.txt"
}
for seg in seg-200k seg-2m; do
  run "http://127.0.0.1:$NGINX_PORT/bench/$seg.ts" "nginx-sendfile-$seg"
  run "http://127.0.0.1:$NGINX_NOSF_PORT/bench/$seg.ts" "nginx-nosendfile-$seg"
  run "http://127.0.0.1:$EDGE_PORT/bench/$seg.ts" "edge-$seg"
done

rps() { awk '/Requests\/sec/ {print $2}' "$work/$1.txt"; }
p99() { awk '/ 99%/ {print $2}' "$work/$1.txt"; }
gbps() { echo "$(rps "$1") * $2 * 8 / 1000000000" | bc -l; }
echo
for pair in seg-200k:204800 seg-2m:2097152; do
  seg=${pair%%:*}
  bytes=${pair##*:}
  best=nginx-sendfile-$seg
  if [ "$(echo "$(rps "nginx-nosendfile-$seg") > $(rps "$best")" | bc -l)" = 1 ]; then
    best=nginx-nosendfile-$seg
  fi
  for name in "edge-$seg" "nginx-sendfile-$seg" "nginx-nosendfile-$seg"; do
    printf '  %-26s %9s req/s  %6.2f Gbit/s  p99 %s\n' "$name" "$(rps "$name")" "$(gbps "$name" "$bytes")" "$(p99 "$name")"
  done
  printf '%s: edge / best nginx (%s) = %.2f\n' "$seg" "$best" \
    "$(echo "$(rps "edge-$seg") / $(rps "$best")" | bc -l)"
done
