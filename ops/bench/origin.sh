#!/usr/bin/env bash
# Origin GET throughput for one 1 MB segment from a file:// store, against
# nginx serving the same file from the same directory, with the same load
# tool (wrk), connections and duration, in one run.
# Usage: ops/bench/origin.sh [seconds] [connections]
# Needs: nginx, wrk (apt-get install nginx wrk).
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS=${1:-10}
CONNS=${2:-32}
cargo build --release -q -p origin-store
work=$(mktemp -d)
chmod 755 "$work"
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT
mkdir -p "$work/store/bench"
head -c 1048576 /dev/urandom > "$work/store/bench/seg.ts"

sed -e "s#ROOT#$work/store#" -e "s#PORT#18481#" -e "s#PREFIX#$work#g" ops/bench/nginx-static.conf > "$work/nginx.conf"
nginx -c "$work/nginx.conf" -p "$work" &
./target/release/hlscdn-origin --listen 127.0.0.1:18482 --store "file://$work/store" > "$work/origin.log" 2>&1 &
# Both servers use every core (nginx: one worker per core; the origin: one
# tokio worker per core); wrk shares the machine with them, equally for both.
sleep 1

run() {
  curl -sf -o /dev/null "$1" || { echo "bench: $1 does not answer 200" >&2; exit 1; }
  wrk -t1 -c"$CONNS" -d"${SECS}s" --latency "$1" | tee "$work/$2.txt"; }
echo "== nginx (static file)"; run http://127.0.0.1:18481/bench/seg.ts nginx
echo "== hlscdn-origin (file://)"; run http://127.0.0.1:18482/bench/seg.ts origin

rps() { awk '/Requests\/sec/ {print $2}' "$work/$1.txt"; }
p99() { awk '/ 99%/ {print $2}' "$work/$1.txt"; }
echo
printf 'origin/nginx requests/s ratio: %.2f  (origin %s req/s, nginx %s req/s; p99 origin %s, nginx %s)\n' \
  "$(echo "$(rps origin) / $(rps nginx)" | bc -l)" "$(rps origin)" "$(rps nginx)" "$(p99 origin)" "$(p99 nginx)"
