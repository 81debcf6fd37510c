#!/usr/bin/env bash
# Installs what the tests need on a fresh Debian machine, and nothing that is
# already there: ffmpeg/ffprobe (a real HLS packager and prober) and moto
# (a real S3-protocol server). Safe to run again.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

need_apt=()
command -v ffmpeg >/dev/null 2>&1 || need_apt+=(ffmpeg)
command -v ffprobe >/dev/null 2>&1 || need_apt+=(ffmpeg)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3 python3-pip)
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
