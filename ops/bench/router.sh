#!/usr/bin/env bash
# Rewritten media playlists served per second by one router, against nginx
# serving the same bytes as a static file; same load tool (wrk), same
# connections, same machine, one run.
# Usage: ops/bench/router.sh [seconds] [connections]
# Needs: nginx, wrk (apt-get install nginx wrk).
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS=${1:-10}
CONNS=${2:-32}
cargo build --release -q -p origin-store -p router
work=$(mktemp -d)
chmod 755 "$work"
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT
mkdir -p "$work/static"

./target/release/hlscdn-origin --listen 127.0.0.1:18491 --store "file://$work/store" --publish-demo \
  > "$work/origin.log" 2>&1 &
./target/release/hlscdn-router --listen 127.0.0.1:18492 --origin http://127.0.0.1:18491 \
  --fleet-token bench-fleet-token-0123456789 --signing-key k1:bench-signing-secret-0123456789 \
  --edge edge-1=http://127.0.0.1:19001 --edge edge-2=http://127.0.0.1:19002 --edge edge-3=http://127.0.0.1:19003 \
  > "$work/router.log" 2>&1 &
sed -e "s#ROOT#$work/static#" -e "s#PORT#18493#" -e "s#PREFIX#$work#g" ops/bench/nginx-static.conf > "$work/nginx.conf"
sed -i 's#types { video/mp2t ts; }#types { application/vnd.apple.mpegurl m3u8; }#' "$work/nginx.conf"
nginx -c "$work/nginx.conf" -p "$work" &
sleep 1

# A viewer's media playlist URL, as the master gives it (with its session).
variant=$(curl -sf http://127.0.0.1:18492/live/demo-1/master.m3u8 | grep -v '^#' | head -1)
case "$variant" in http*) media=$variant ;; *) media="http://127.0.0.1:18492/live/demo-1/$variant" ;; esac
curl -sf "$media" > "$work/static/index.m3u8"
echo "media playlist: $(wc -c < "$work/static/index.m3u8") bytes, $(grep -c '^#EXTINF' "$work/static/index.m3u8") segments"

run() {
  curl -sf -o /dev/null "$1" || { echo "bench: $1 does not answer 200" >&2; exit 1; }
  wrk -t1 -c"$CONNS" -d"${SECS}s" --latency "$1" | tee "$work/$2.txt"; }
echo "== nginx (static copy of the rewritten playlist)"; run http://127.0.0.1:18493/index.m3u8 nginx
echo "== hlscdn-router (rewriting per request)"; run "$media" router

rps() { awk '/Requests\/sec/ {print $2}' "$work/$1.txt"; }
p99() { awk '/ 99%/ {print $2}' "$work/$1.txt"; }
echo
printf 'router/nginx requests/s ratio: %.2f  (router %s req/s, nginx %s req/s; p99 router %s, nginx %s)\n' \
  "$(echo "$(rps router) / $(rps nginx)" | bc -l)" "$(rps router)" "$(rps nginx)" "$(p99 router)" "$(p99 nginx)"
