#!/bin/sh
# scale-edges.sh N: runs hlscdn-edge@1 .. hlscdn-edge@N and stops (drains) the
# instances above N. Called by `hlscdn autoscale --exec 'scale-edges.sh {replicas}'`.
set -eu
n="$1"
case "$n" in ''|*[!0-9]*) echo "usage: $0 N" >&2; exit 2 ;; esac
i=1
while [ "$i" -le "$n" ]; do
  systemctl start "hlscdn-edge@$i.service"
  i=$((i + 1))
done
for unit in $(systemctl list-units --plain --no-legend --state=active 'hlscdn-edge@*.service' | awk '{print $1}'); do
  k="${unit#hlscdn-edge@}"; k="${k%.service}"
  if [ "$k" -gt "$n" ]; then
    systemctl stop --no-block "$unit"   # SIGTERM: the edge drains, then exits
  fi
done
