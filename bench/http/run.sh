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
"$tmp/minimalhttp" -listen 127.0.0.1:17431 &
targets=("switchboard 17430" "minimal 17431")
if [ -n "${SWITCHBOARD_BEFORE:-}" ]; then
	"$SWITCHBOARD_BEFORE" serve --listen 127.0.0.1:17432 2>/dev/null &
	targets+=("before 17432")
fi
sleep 1
# Every server gets its routes once, so that resolve answers state hits.
for target in "${targets[@]}"; do
	set -- $target
	wrk -t2 -c"$conns" -d1s -s bench/http/set.lua "http://127.0.0.1:$2" >/dev/null
done
: >"$tmp/results"
for round in $(seq "$rounds"); do
	for script in set resolve; do
		# Rotate the order each round: no target always runs first.
		n=${#targets[@]}
		for i in $(seq 0 $((n - 1))); do
			set -- ${targets[$(((i + round) % n))]}
			rps=$(wrk -t2 -c"$conns" -d"$duration" -s "bench/http/$script.lua" "http://127.0.0.1:$2" |
				awk '/Non-2xx/ {bad=1} /Requests\/sec/ {print $2} END {if (bad) print "non-2xx answers" > "/dev/stderr"}')
			echo "round $round $script $1 $rps"
			echo "$script $1 $rps" >>"$tmp/results"
		done
	done
done
echo "== medians of $rounds rounds of $duration, wrk -t2 -c$conns"
for script in set resolve; do
	for target in "${targets[@]}"; do
		set -- $target
		med=$(awk -v s="$script" -v t="$1" '$1 == s && $2 == t {print $3}' "$tmp/results" | sort -g |
			awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}')
		echo "$script $1 $med"
	done
done | awk '{m[$1 " " $2] = $3; print} $2 == "minimal" {base[$1] = $3}
	END {for (k in m) {split(k, p, " "); if (p[2] != "minimal") printf "%s %s / minimal = %.2f\n", p[1], p[2], m[k] / base[p[1]]}}'
