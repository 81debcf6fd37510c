# Helpers the benchmark scripts source (ops/bench/*.sh, loadtest/bench-system.sh).

# A loopback TCP port nothing listens on now (other benchmarks may share the machine).
free_port() {
  local port
  while :; do
    port=$((20000 + RANDOM % 40000))
    if ! ss -Htln "sport = :$port" | grep -q .; then echo "$port"; return; fi
  done
}
