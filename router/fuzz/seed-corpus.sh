#!/usr/bin/env bash
# Seeds the fuzz corpus of the `rewrite` target with the playlist corpus
# (router/tests/playlists). The corpus dir is not committed.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p corpus/rewrite
cp ../tests/playlists/*.m3u8 corpus/rewrite/
echo "seeded corpus/rewrite with $(ls corpus/rewrite | wc -l) files"
