#!/usr/bin/env bash
# Runs mxbench (../shared/bench) against a fresh Myelin release build on loopback, with
# --pid sampling, then stops the server. Extra arguments go to mxbench.py.
#
#   VENV=/tmp/bench-venv   python with aiohttp (see ../shared/bench/README.md)
#   PORT=28010             client API port
#   OUT=/tmp/myelin-bench  where the JSON and text reports go
#   RUN=1                  run number (output file names)
#
# Example: bench/run-myelin.sh --scenarios send --send-senders 8 --send-concurrency 8
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=${BENCH:-$HERE/../shared/bench}
VENV=${VENV:-/tmp/bench-venv}
PORT=${PORT:-28010}
OUT=${OUT:-/tmp/myelin-bench}
RUN=${RUN:-1}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/myelin/target}"

(cd "$HERE" && cargo build --release --locked --bin myelin)
mkdir -p "$OUT"
WORK=$(mktemp -d)
trap 'kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; rm -rf "$WORK"' EXIT
printf 'server_name = "bench.local"\n' > "$WORK/config.toml"
MYELIN_LISTEN="127.0.0.1:$PORT" MYELIN_DATA_DIR="$WORK/data" MYELIN_ALLOW_REGISTRATION=true \
    MYELIN_RATE_LIMITS__ENABLED=false MYELIN_LOG__LEVEL=warn \
    "$CARGO_TARGET_DIR/release/myelin" --config "$WORK/config.toml" serve 2>"$OUT/myelin-run$RUN.log" &
PID=$!
for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$PORT/_matrix/client/versions" >/dev/null && break
    sleep 0.1
done
"$VENV/bin/python" "$BENCH/mxbench.py" --base-url "http://127.0.0.1:$PORT" --server-name bench.local \
    --pid "server=$PID" --label myelin --json "$OUT/myelin-run$RUN.json" "$@" | tee "$OUT/myelin-run$RUN.txt"
