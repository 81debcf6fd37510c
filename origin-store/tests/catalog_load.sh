#!/usr/bin/env bash
# catalog_load.sh BIN N [origin flags...]: starts the hlscdn-origin binary
# BIN on a file:// store of N one-byte objects (N/100 streams of a playlist
# and 99 segments), makes 32 concurrent `GET /api/v1/streams` with segment
# GETs on new connections meanwhile, and prints the figures. Issue 13 item 7;
# for comparing builds (`tests/catalog.rs` asserts on the current one).
# Needs curl, python3 and bc.
set -euo pipefail
bin=$1; n=$2; shift 2
dir=$(mktemp -d /tmp/catmeasure.XXXXXX)
python3 - "$dir/store" "$n" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for s in range(n // 100):
    d = os.path.join(root, "lib", "s%04d" % s)
    os.makedirs(d)
    open(os.path.join(d, "index.m3u8"), "w").write("#EXTM3U\n")
    for k in range(99):
        open(os.path.join(d, "seg-%d.ts" % k), "wb").write(b"x")
PY
"$bin" --listen 127.0.0.1:0 --store "file://$dir/store/" "$@" >"$dir/out" 2>"$dir/err" &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do grep -q "listening on" "$dir/out" 2>/dev/null && break; sleep 0.1; done
addr=$(sed -n 's/^listening on http:\/\///p' "$dir/out" | head -1)
seg="http://$addr/lib/s0000/seg-1.ts"
base=$(curl -s -o /dev/null -w '%{time_total}' "$seg")
start=$(date +%s.%N)
for i in $(seq 32); do curl -s -o "$dir/cat.$i" -w '%{http_code} %{time_total}\n' "http://$addr/api/v1/streams" >"$dir/catt.$i" & done
times=()
while [ "$(jobs -r | wc -l)" -gt 1 ]; do
  times+=("$(curl -s -o /dev/null -w '%{time_total}' "$seg")"); sleep 0.01
done
wait $(jobs -p | grep -v "^$pid$") 2>/dev/null || true
end=$(date +%s.%N)
maxseg=$(printf '%s\n' "${times[@]:-0}" | sort -g | tail -1)
maxcat=$(cat "$dir"/catt.* | awk '{print $2}' | sort -g | tail -1)
codes=$(cat "$dir"/catt.* | awk '{print $1}' | sort | uniq -c | tr '\n' ' ')
streams=$(python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(len(d['streams']), d.get('truncated'))" "$dir/cat.1")
listings=$(curl -s "http://$addr/metrics" | grep '^hlscdn_origin_catalog_listings_total' || echo "no counter")
echo "objects=$n segment_before=${base}s segment_gets_meanwhile=${#times[@]} slowest_segment=${maxseg}s slowest_catalog=${maxcat}s burst=$(echo "$end - $start" | bc)s codes=[$codes] streams,truncated=$streams listings=[$listings]"
