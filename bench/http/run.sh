#!/usr/bin/env bash
# Measures switchboard serve (memory backend, request logging at its
# default) and a minimal net/http JSON handler with the same wrk load on
# loopback (needs wrk: apt-get install wrk), in alternating rounds, and
# prints each round's requests/s and the medians' ratio to the minimal
# handler.
#   bench/http/run.sh [duration per run, default 6s] [connections, default 64] [rounds, default 5]
# With SWITCHBOARD_BEFORE=/path/to/an/older/switchboard binary, that build
# is measured in the same rounds too (a before/after in one run).
set -euo pipefail
cd "$(dirname "$0")/../.."
duration=${1:-6s}
conns=${2:-64}
rounds=${3:-5}
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
go build -o "$tmp/switchboard" ./cmd/switchboard
(cd bench && go build -o "$tmp/minimalhttp" ./cmd/minimalhttp)
"$tmp/switchboard" serve --listen 127.0.0.1:17430 2>/dev/null &
pids=([17430]=$!)
"$tmp/minimalhttp" -listen 127.0.0.1:17431 &
pids[17431]=$!
targets=("switchboard 17430" "minimal 17431")
if [ -n "${SWITCHBOARD_BEFORE:-}" ]; then
	"$SWITCHBOARD_BEFORE" serve --listen 127.0.0.1:17432 2>/dev/null &
	pids[17432]=$!
	targets+=("before 17432")
fi
# cpu_ticks prints a process's user+system CPU time in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
sleep 1
# Every server gets its routes once, so that resolve answers state hits.
for target in "${targets[@]}"; do
	set -- $target
	wrk -t2 -c"$conns" -d1s -s bench/http/set.lua "http://127.0.0.1:$2" >/dev/null
done
: >"$tmp/results"
: >"$tmp/cpu"
for round in $(seq "$rounds"); do
	for script in set resolve; do
		# Rotate the order each round: no target always runs first.
		n=${#targets[@]}
		for i in $(seq 0 $((n - 1))); do
			set -- ${targets[$(((i + round) % n))]}
			before=$(cpu_ticks "${pids[$2]}")
			out=$(wrk -t2 -c"$conns" -d"$duration" -s "bench/http/$script.lua" "http://127.0.0.1:$2")
			after=$(cpu_ticks "${pids[$2]}")
			rps=$(awk '/Non-2xx/ {bad=1} /Requests\/sec/ {print $2} END {if (bad) print "non-2xx answers" > "/dev/stderr"}' <<<"$out")
			reqs=$(awk '/requests in/ {print $1}' <<<"$out")
			# The server's own CPU per request (user + system), in µs: unlike
			# requests/s it does not move with what else the machine runs.
			cpu=$(awk -v t=$((after - before)) -v hz="$hz" -v n="$reqs" 'BEGIN {printf "%.2f", t / hz * 1e6 / n}')
			echo "round $round $script $1 $rps req/s, $cpu µs CPU/req"
			echo "$script $1 $rps" >>"$tmp/results"
			echo "$script $1 $cpu" >>"$tmp/cpu"
		done
	done
done
# report prints the median of each script and target in $file, in $unit,
# and each target's ratio to the minimal handler (the inverse with
# invert=1).
median_of() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
report() {
	for script in set resolve; do
		for target in "${targets[@]}"; do
			set -- $target
			echo "$script $1 $(awk -v s="$script" -v t="$1" '$1 == s && $2 == t {print $3}' "$file" | median_of)"
		done
	done | awk -v unit="$unit" -v inv="$invert" '{m[$1 " " $2] = $3; print $0, unit} $2 == "minimal" {base[$1] = $3}
		END {for (k in m) {split(k, p, " "); if (p[2] != "minimal") printf "%s %s / minimal = %.2f\n", p[1], p[2], inv ? base[p[1]] / m[k] : m[k] / base[p[1]]}}'
}
echo "== medians of $rounds rounds of $duration, wrk -t2 -c$conns: throughput"
file=$tmp/results unit=req/s invert=0 report
echo "== the servers' CPU per request (the ratio is minimal's over the target's: the throughput one CPU would give)"
file=$tmp/cpu unit="µs CPU/req" invert=1 report
