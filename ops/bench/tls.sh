#!/usr/bin/env bash
# TLS: edge cache hits over HTTPS against nginx proxy_cache with ssl, over
# HTTP/1.1 (wrk) and HTTP/2 (h2load), at 200 KiB and 2 MiB; and full TLS
# handshakes (openssl s_time -new: a new session every time, no resumption).
# Both servers get the same certificate (ECDSA P-256, made here with openssl),
# TLS 1.3 only, and the same clients, so the same cipher suite and key
# exchange (printed below); both sit in front of the same hlscdn-origin and
# every measured request is a hit.
#
# Each server is pinned to core 0 (nginx: one worker; the edge: one tokio
# worker, from its affinity) and the load tool to core 1, and the figure
# compared is the server's CPU time per request or handshake (utime + stime
# from /proc), which does not depend on whether the load tool saturated
# first; requests per second are shown too. The two servers alternate, over
# ROUNDS rounds (default 3), and the median ratio is reported.
#
# Usage: ops/bench/tls.sh [seconds] [connections]   (default 6 s, 32)
# Needs: nginx, wrk, h2load (nghttp2-client), openssl, curl, bc, taskset.
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS=${1:-6}
CONNS=${2:-32}
ROUNDS=${ROUNDS:-3}
cargo build --release -q -p origin-store -p edge-agent
work=$(mktemp -d)
chmod 755 "$work" # nginx workers run as nobody
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
. ops/bench/lib.sh
NGINX_PORT=$(free_port)
ORIGIN_PORT=$(free_port)
EDGE_PORT=$(free_port)
mkdir -p "$work/store/bench"
head -c 204800 /dev/urandom > "$work/store/bench/seg-200k.ts"
head -c 2097152 /dev/urandom > "$work/store/bench/seg-2m.ts"

# One CA, one server certificate for 127.0.0.1, shared by both servers.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=bench-ca \
  -keyout "$work/ca.key" -out "$work/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=127.0.0.1 \
  -keyout "$work/server.key" -out "$work/server.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > "$work/ext"
openssl x509 -req -in "$work/server.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" -CAcreateserial \
  -days 2 -extfile "$work/ext" -out "$work/server.pem" 2>/dev/null
chmod 644 "$work/server.key"

./target/release/hlscdn-origin --listen "127.0.0.1:$ORIGIN_PORT" --store "file://$work/store" \
  > "$work/origin.log" 2>&1 &
taskset -c 0 ./target/release/hlscdn-edge --listen "127.0.0.1:$EDGE_PORT" --id bench \
  --origin "http://127.0.0.1:$ORIGIN_PORT" --cache-bytes 1073741824 \
  --tls-cert "$work/server.pem" --tls-key "$work/server.key" > "$work/edge.log" 2>&1 &
edge_pid=$!
# nginx: the proxy_cache reference, one worker, TLS 1.3 with HTTP/2 (sendfile
# cannot serve TLS without kernel TLS, so it is off).
mkdir -p "$work/nginx"
sed -e "s#ORIGIN_PORT#$ORIGIN_PORT#" -e "s#PREFIX#$work/nginx#g" -e "s#SENDFILE#off#" \
  -e "s#worker_processes auto;#worker_processes 1;#" \
  -e "s#listen 127.0.0.1:PORT;#listen 127.0.0.1:$NGINX_PORT ssl http2; ssl_certificate $work/server.pem; ssl_certificate_key $work/server.key; ssl_protocols TLSv1.3; ssl_session_cache off; ssl_session_tickets off;#" \
  ops/bench/nginx-proxy-cache.conf > "$work/nginx/nginx.conf"
taskset -c 0 nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" &
nginx_master=$!

wait_up() {
  for _ in $(seq 100); do curl -sf --cacert "$work/ca.pem" -o /dev/null "$1" && return; sleep 0.1; done
  echo "bench: $1 did not come up" >&2; exit 1
}
wait_up "https://127.0.0.1:$EDGE_PORT/healthz"
curl -sf -o /dev/null "http://127.0.0.1:$ORIGIN_PORT/bench/seg-2m.ts"
for port in "$NGINX_PORT" "$EDGE_PORT"; do
  for seg in seg-200k seg-2m; do
    url="https://127.0.0.1:$port/bench/$seg.ts"
    curl -sf --cacert "$work/ca.pem" -o /dev/null "$url"
    curl -sf --cacert "$work/ca.pem" -o /dev/null -D "$work/head.txt" "$url"
    grep -qi '^x-cache: *HIT' "$work/head.txt" || { echo "bench: $url is not a cache hit" >&2; exit 1; }
  done
  echo "port $port: $(echo | openssl s_client -connect "127.0.0.1:$port" -CAfile "$work/ca.pem" 2>/dev/null \
    | grep -E '^(New|Server Temp Key|Verify return code)' | tr '\n' ' ')"
done

# CPU seconds × 100 (clock ticks) of a server: the edge, or nginx's master and worker.
ticks() {
  local total=0 pid
  for pid in "$@"; do total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat"))); done
  echo "$total"
}
nginx_pids() { echo "$nginx_master $(pgrep -P "$nginx_master" | tr '\n' ' ')"; }
# measure NAME PIDS -- COMMAND...: runs the load on core 1; prints "requests µs-per-request".
measure() {
  local name=$1 pids=$2; shift 3
  local before after out count
  before=$(ticks $pids)
  out=$(taskset -c 1 "$@" 2>&1)
  after=$(ticks $pids)
  case "$1" in
    wrk) count=$(echo "$out" | awk '/requests in/ {print $1}') ;;
    h2load) count=$(echo "$out" | awk '/^requests:/ {print $8}') ;;
    openssl) count=$(echo "$out" | awk '/connections in/ {print $1; exit}') ;;
  esac
  echo "$out" > "$work/$name.txt"
  echo "$count $(echo "($after - $before) * 10000 / $count" | bc -l)"
}
load() { # kind url -> the command
  case "$1" in
    h1) echo "wrk -t1 -c$CONNS -d${SECS}s $2" ;;
    h2) echo "h2load -D $SECS -t1 -c$((CONNS / 4)) -m4 $2" ;;
    hs) echo "openssl s_time -connect ${2#https://} -new -time $SECS" ;;
  esac
}

results="$work/results.txt"
: > "$results"
for round in $(seq "$ROUNDS"); do
  for kind in h1 h2; do
    for seg in seg-200k seg-2m; do
      for server in nginx edge; do
        if [ $server = nginx ]; then port=$NGINX_PORT; pids=$(nginx_pids); else port=$EDGE_PORT; pids=$edge_pid; fi
        # shellcheck disable=SC2046
        read -r count us < <(measure "$server-$kind-$seg-$round" "$pids" -- $(load $kind "https://127.0.0.1:$port/bench/$seg.ts"))
        echo "$kind $seg $server $round $count $us" | tee -a "$results"
      done
    done
  done
  for server in nginx edge; do
    if [ $server = nginx ]; then port=$NGINX_PORT; pids=$(nginx_pids); else port=$EDGE_PORT; pids=$edge_pid; fi
    # shellcheck disable=SC2046
    read -r count us < <(measure "$server-hs-$round" "$pids" -- $(load hs "https://127.0.0.1:$port"))
    echo "handshake - $server $round $count $us" | tee -a "$results"
  done
done

echo
echo "server CPU µs per request (per handshake), median of $ROUNDS rounds; ratio nginx/edge = edge's speed relative to nginx:"
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
for case in "h1 seg-200k" "h1 seg-2m" "h2 seg-200k" "h2 seg-2m" "handshake -"; do
  set -- $case
  n=$(awk -v k="$1" -v s="$2" '$1 == k && $2 == s && $3 == "nginx" {print $6}' "$results" | median)
  e=$(awk -v k="$1" -v s="$2" '$1 == k && $2 == s && $3 == "edge" {print $6}' "$results" | median)
  ratios=$(awk -v k="$1" -v s="$2" '$1 == k && $2 == s {v[$4, $3] = $6; r[$4] = 1} END {for (i in r) print v[i, "nginx"] / v[i, "edge"]}' "$results" | median)
  printf '  %-9s %-8s nginx %8.1f µs  edge %8.1f µs  edge speed / nginx (median of per-round ratios) %.2f\n' "$1" "$2" "$n" "$e" "$ratios"
done
