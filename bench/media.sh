#!/usr/bin/env bash
# Media throughput and memory: uploads and downloads a 1 MiB file (20 times) and a 100 MiB
# file (3 times) through a fresh Myelin release build with curl, and reports MB/s each way and
# the server's peak RSS during the 100 MiB transfers (VmHWM, reset before them).
#
#   PORT=28012   client API port
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PORT=${PORT:-28012}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/myelin/target}"
(cd "$HERE" && cargo build --release --locked --bin myelin)
WORK=$(mktemp -d)
trap 'kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; rm -rf "$WORK"' EXIT
printf 'server_name = "bench.local"\n[media]\nmax_upload_size = 209715200\n' > "$WORK/config.toml"
MYELIN_LISTEN="127.0.0.1:$PORT" MYELIN_DATA_DIR="$WORK/data" MYELIN_ALLOW_REGISTRATION=true \
    MYELIN_RATE_LIMITS__ENABLED=false MYELIN_LOG__LEVEL=warn \
    "$CARGO_TARGET_DIR/release/myelin" --config "$WORK/config.toml" serve 2>"$WORK/log" &
PID=$!
BASE="http://127.0.0.1:$PORT"
for _ in $(seq 100); do curl -sf "$BASE/_matrix/client/versions" >/dev/null && break; sleep 0.1; done
TOKEN=$(curl -sf -X POST "$BASE/_matrix/client/v3/register" -H 'content-type: application/json' \
    -d '{"username":"media","password":"media-bench-1","auth":{"type":"m.login.dummy"}}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
head -c $((1024 * 1024)) /dev/urandom > "$WORK/1m"
head -c $((100 * 1024 * 1024)) /dev/urandom > "$WORK/100m"

rss() { awk '/^VmRSS/ {print $2}' "/proc/$PID/status"; }
hwm() { awk '/^VmHWM/ {print $2}' "/proc/$PID/status"; }

# run <file> <repetitions>: prints upload and download MB/s (bytes / total seconds / 1e6).
run() {
    local file=$1 n=$2 size up=0 down=0 uri t
    size=$(stat -c %s "$file")
    for _ in $(seq "$n"); do
        out=$(curl -sf -X POST -T "$file" -H "Authorization: Bearer $TOKEN" \
            -H 'content-type: application/octet-stream' -w ' %{time_total}' "$BASE/_matrix/media/v3/upload")
        t=${out##* }
        uri=$(echo "${out% *}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["content_uri"][6:])')
        up=$(python3 -c "print($up + $t)")
        t=$(curl -sf -o "$WORK/down" -H "Authorization: Bearer $TOKEN" -w '%{time_total}' \
            "$BASE/_matrix/client/v1/media/download/$uri")
        cmp -s "$WORK/down" "$file" || { echo "download differs" >&2; exit 1; }
        down=$(python3 -c "print($down + $t)")
    done
    python3 -c "s=$size*$n/1e6; print(f'$(basename "$file"): upload {s/$up:.0f} MB/s, download {s/$down:.0f} MB/s ({$n} x {$size} bytes)')"
}

echo "idle RSS: $(rss) KiB"
run "$WORK/1m" 20
echo 5 > "/proc/$PID/clear_refs" 2>/dev/null || echo "(could not reset VmHWM; the peak below includes the 1 MiB phase)"
before=$(rss)
run "$WORK/100m" 3
echo "RSS before the 100 MiB phase: $before KiB; peak during it: $(hwm) KiB; after: $(rss) KiB"
