#!/usr/bin/env bash
# Runs switchboard bench against the embedded Manager, a switchboard serve
# on loopback and the Redis backend (a throwaway redis-server on a free
# port), writing results/latency-*.json for cmd/charts.
#   bench/latency.sh [duration, default 10s]
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-10s}
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
go build -o "$tmp/switchboard" ./cmd/switchboard
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
common=(--duration "$duration" --keys 100000 --thread-ratio 0.3 --mix 10:10:80 --seed 1 -o json)

"$tmp/switchboard" bench "${common[@]}" --concurrency 8 > bench/results/latency-embedded.json

port=$(free_port)
# Room for all 100,000 keys (the default capacity is 10,000 per partition).
printf 'session_manager: { max_entries_per_partition: 100000 }\n' > "$tmp/serve.yaml"
"$tmp/switchboard" serve --listen "127.0.0.1:$port" --config "$tmp/serve.yaml" 2>/dev/null &
sleep 1
"$tmp/switchboard" bench "${common[@]}" --concurrency 64 --server "http://127.0.0.1:$port" > bench/results/latency-server.json

rport=$(free_port)
redis-server --bind 127.0.0.1 --port "$rport" --save '' --appendonly no --dir "$tmp" >/dev/null &
sleep 1
"$tmp/switchboard" bench "${common[@]}" --concurrency 64 --backend redis --redis-addr "127.0.0.1:$rport" > bench/results/latency-redis.json
echo "wrote bench/results/latency-{embedded,server,redis}.json"
