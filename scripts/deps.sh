#!/usr/bin/env bash
# Installs what the tests need on a fresh Debian machine, and nothing that is
# already there: ffmpeg/ffprobe (a real HLS packager and prober), moto
# (a real S3-protocol server), chromium (the browser tests of the ops
# dashboard and player), curl, certutil (to trust a test CA in Chromium),
# Node.js + npm and the ops front-end packages (hls.js, embedded in the
# hlscdn binary; shaka-player, played by the steering browser test; and
# playwright-core, which drives chromium).
# Safe to run again.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

need_apt=()
command -v ffmpeg >/dev/null 2>&1 || need_apt+=(ffmpeg)
command -v ffprobe >/dev/null 2>&1 || need_apt+=(ffmpeg)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3 python3-pip)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
# curl: the TLS tests' HTTP/2 client. certutil: the TLS browser test trusts
# the demo's CA in Chromium's NSS db.
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
command -v certutil >/dev/null 2>&1 || need_apt+=(libnss3-tools)
command -v node >/dev/null 2>&1 || need_apt+=(nodejs)
command -v npm >/dev/null 2>&1 || need_apt+=(npm)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "deps: installing ${need_apt[*]} with apt-get"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

MOTO_VERSION="5.2.1"
if ! python3 -c "import moto.server" >/dev/null 2>&1; then
  echo "deps: installing moto[server]==$MOTO_VERSION with pip"
  python3 -m pip install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION" \
    || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages "moto[server]==$MOTO_VERSION"
fi

# The ops front-end packages, exactly as locked: `npm ci` unless the tree
# installed last time came from the same lock file (a stamp records it).
OPS_DIR="$(cd "$(dirname "$0")/.." && pwd)/ops"
STAMP="$OPS_DIR/node_modules/.hlscdn-installed-lock"
if ! cmp -s "$OPS_DIR/package-lock.json" "$STAMP" \
   || [ ! -d "$OPS_DIR/node_modules/hls.js" ] || [ ! -d "$OPS_DIR/node_modules/shaka-player" ] \
   || [ ! -d "$OPS_DIR/node_modules/playwright-core" ]; then
  echo "deps: npm ci in ops/ (hls.js, shaka-player, playwright-core)"
  (cd "$OPS_DIR" && npm ci --no-audit --no-fund --loglevel=error)
  cp "$OPS_DIR/package-lock.json" "$STAMP"
fi
