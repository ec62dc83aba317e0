#!/usr/bin/env bash
# Measures switchboard serve and a minimal net/http JSON handler with the
# same wrk load on loopback (needs wrk: apt-get install wrk).
#   bench/http/run.sh [duration, default 10s] [connections, default 64]
set -euo pipefail
cd "$(dirname "$0")/../.."
duration=${1:-10s}
conns=${2:-64}
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
go build -o "$tmp/switchboard" ./cmd/switchboard
(cd bench && go build -o "$tmp/minimalhttp" ./cmd/minimalhttp)
"$tmp/switchboard" serve --listen 127.0.0.1:17430 2>/dev/null &
"$tmp/minimalhttp" -listen 127.0.0.1:17431 &
sleep 1
for target in "switchboard 17430" "minimal-net/http 17431"; do
	set -- $target
	echo "== $1: set"
	wrk -t2 -c"$conns" -d"$duration" --latency -s bench/http/set.lua "http://127.0.0.1:$2" | grep -E "Requests/sec|50%|99%|Non-2xx"
	echo "== $1: resolve"
	wrk -t2 -c"$conns" -d"$duration" --latency -s bench/http/resolve.lua "http://127.0.0.1:$2" | grep -E "Requests/sec|50%|99%|Non-2xx"
done
