#!/usr/bin/env bash
# The router's resident memory (VmRSS) per 10 000 live sessions and per
# 1 000 cached playlists, measured on real processes: an origin on a file
# store, a router, and curl/wrk as viewers.
#
# 1. Baseline: the router after one viewer of live/demo-1.
# 2. SESSIONS viewers (default 10 000): each fetches the multivariant
#    playlist (which mints its session) and then its media playlist with the
#    session, so the router counts the (viewer, edge) pair toward its edge.
# 3. PLAYLISTS streams (default 1 000, each a multivariant playlist and a
#    six-segment VOD media playlist): one viewer each, so each stream's two
#    playlists are cached, and the media playlist's rendering for its edge
#    is kept.
#
# Usage: ops/bench/memory.sh
#        SESSIONS=10000 PLAYLISTS=1000 ops/bench/memory.sh
# Needs: curl, wrk (apt-get install curl wrk).
set -euo pipefail
cd "$(dirname "$0")/../.."
SESSIONS=${SESSIONS:-10000}
PLAYLISTS=${PLAYLISTS:-1000}
cargo build --release -q -p origin-store -p router
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
. ops/bench/lib.sh
ORIGIN_PORT=$(free_port)
ROUTER_PORT=$(free_port)

# PLAYLISTS VOD streams in the store, written before the origin starts.
for i in $(seq "$PLAYLISTS"); do
  dir="$work/store/vod/m$i"
  mkdir -p "$dir/720p"
  printf '#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=2500000,RESOLUTION=1280x720\n720p/index.m3u8\n' > "$dir/master.m3u8"
  {
    printf '#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-PLAYLIST-TYPE:VOD\n'
    for s in 0 1 2 3 4 5; do printf '#EXTINF:2.000,\nseg-%05d.ts\n' "$s"; done
    printf '#EXT-X-ENDLIST\n'
  } > "$dir/720p/index.m3u8"
done

./target/release/hlscdn-origin --listen "127.0.0.1:$ORIGIN_PORT" --store "file://$work/store" --publish-demo \
  > "$work/origin.log" 2>&1 &
./target/release/hlscdn-router --listen "127.0.0.1:$ROUTER_PORT" \
  --origin "http://127.0.0.1:$ORIGIN_PORT" \
  --fleet-token bench-fleet-token-0123456789 --signing-key k1:bench-signing-secret-0123456789 \
  --edge edge-1=http://127.0.0.1:19001 --edge edge-2=http://127.0.0.1:19002 --edge edge-3=http://127.0.0.1:19003 \
  > "$work/router.log" 2>&1 &
router_pid=$!
router="http://127.0.0.1:$ROUTER_PORT"
for _ in $(seq 100); do curl -sf -o /dev/null "$router/live/demo-1/master.m3u8" && break; sleep 0.1; done

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$router_pid/status"; }
# A viewer of the stream at $1: its multivariant playlist, then its first
# variant with the session, which is printed (path and query).
viewer() {
  local media
  media=$(curl -sf "$router/$1/master.m3u8" | grep -v '^#' | head -1 | sed -e "s#^https\?://[^/]*##" -e "s#^\([^/]\)#/$1/\1#")
  curl -sf -o /dev/null "$router$media"
  echo "$media"
}
export -f viewer
export router

viewer live/demo-1 > /dev/null
sleep 1
base=$(rss_kib)

seq "$SESSIONS" | xargs -P 8 -I{} bash -c 'viewer live/demo-1' > "$work/paths.txt"
rotation "$work/paths.txt" "$work/rotate.lua"
# Every session reloads its media playlist a few times, as players do.
wrk -t1 -c8 -d3s -s "$work/rotate.lua" "$router/" > /dev/null
sleep 1
sessions=$(rss_kib)

seq "$PLAYLISTS" | xargs -P 8 -I{} bash -c 'viewer vod/m{}' > /dev/null
sleep 1
playlists=$(rss_kib)

echo "sessions: $(sort -u "$work/paths.txt" | wc -l) distinct, playlists: $PLAYLISTS streams ($((PLAYLISTS * 2)) playlists)"
printf 'router RSS: baseline %d KiB, after %d sessions %d KiB (+%d KiB), after %d streams %d KiB (+%d KiB)\n' \
  "$base" "$SESSIONS" "$sessions" "$((sessions - base))" "$PLAYLISTS" "$playlists" "$((playlists - sessions))"
printf 'per 10 000 sessions: %.1f MiB; per 1 000 cached playlists: %.1f MiB\n' \
  "$(echo "($sessions - $base) * 10000 / $SESSIONS / 1024" | bc -l)" \
  "$(echo "($playlists - $sessions) * 1000 / ($PLAYLISTS * 2) / 1024" | bc -l)"
