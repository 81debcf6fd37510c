# Helpers the benchmark scripts source (ops/bench/*.sh, loadtest/bench-system.sh).

# A loopback TCP port nothing listens on now (other benchmarks may share the machine).
free_port() {
  local port
  while :; do
    port=$((20000 + RANDOM % 40000))
    if ! ss -Htln "sport = :$port" | grep -q .; then echo "$port"; return; fi
  done
}

# Cores for the servers and for the load generator: the first SERVER_CORES
# (default 1) cores for the server, the rest for wrk. Sets SERVER_CPUS,
# LOAD_CPUS and LOAD_THREADS.
split_cores() {
  SERVER_CORES=${SERVER_CORES:-1}
  local cores
  cores=$(nproc)
  if [ "$cores" -le "$SERVER_CORES" ]; then
    echo "bench: $cores cores; SERVER_CORES=$SERVER_CORES leaves none for wrk" >&2; exit 1
  fi
  SERVER_CPUS="0-$((SERVER_CORES - 1))"
  LOAD_CPUS="$SERVER_CORES-$((cores - 1))"
  LOAD_THREADS=$((cores - SERVER_CORES))
}

# CPU time (ticks of 1/100 s, utime + stime) the processes $@ have used;
# one that has exited counts 0 (nginx's cache loader exits after a minute).
cpu_ticks() {
  local total=0 pid
  for pid in "$@"; do
    total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)))
  done
  echo "$total"
}

# The median of the numbers on stdin, one per line.
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

# measure NAME "PIDS" URL [LUA]: wrk on LOAD_CPUS (LOAD_THREADS threads,
# CONNS connections, SECS seconds) against URL, its output kept in
# $work/NAME.txt; prints "requests/s server-CPU-µs-per-request p99" with the
# CPU time of the server processes PIDS over the run.
measure() {
  local name=$1 pids=$2 url=$3 script=${4:-} before after out count
  before=$(cpu_ticks $pids)
  out=$(taskset -c "$LOAD_CPUS" wrk -t"$LOAD_THREADS" -c"$CONNS" -d"${SECS}s" --latency ${script:+-s "$script"} "$url")
  after=$(cpu_ticks $pids)
  echo "$out" > "$work/$name.txt"
  if echo "$out" | grep -q "Non-2xx"; then
    echo "$name: $(echo "$out" | grep "Non-2xx") (a figure of error answers is no figure)" >&2
    exit 1
  fi
  count=$(echo "$out" | awk '/requests in/ {print $1}')
  echo "$(echo "$out" | awk '/Requests\/sec/ {print $2}') $(echo "($after - $before) * 10000 / $count" | bc -l) $(echo "$out" | awk '/ 99%/ {print $2}')"
}

# rotation PATHS LUA: writes a wrk Lua script that requests the paths (with
# their queries) listed in the file PATHS, one per line, in turn.
rotation() {
  cat > "$2" <<EOF
local paths, i = {}, 0
for line in io.lines("$1") do paths[#paths + 1] = line end
request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
EOF
}
