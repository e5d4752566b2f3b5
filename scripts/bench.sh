#!/usr/bin/env bash
# Reproduces the README's benchmark figures on this machine, one command:
#
#   scripts/bench.sh           full run (~10 min): load vs raw and Python, half-rate latency,
#                              ack-after-handled, handler delay, chat sweep + plot, 100k scale,
#                              criterion micro-benches (FSM on memory, SQLite and a local
#                              redis-server); results in docs/bench/
#   scripts/bench.sh quick     the load comparison and the scale run only (~2 min)
#   scripts/bench.sh shapes    the shapes bots live in (~6 min): 100 chats × 2,000 events each,
#                              10,000 chats × 4 events (window 2,000), 1 busy chat, a server
#                              close (code 1012) every 2,000 events with ack-after-handled;
#                              raw on a current-thread runtime, ours on the default runtime,
#                              throughput, p99 and CPU per message; then the 1,000,000-chat
#                              scale run. BENCH_BEFORE=path/to/another/e2e adds that build's
#                              bot as `before` in the same runs (ratios against main).
#   scripts/bench.sh smoke     seconds, debug build, asserts no lost echo and no reordering
#                              (what .ci/run runs so the scripts never rot)
#
# Installs what it needs: the official Python client in a virtualenv (python-trueconf-bot from
# PyPI, pinned and hash-checked by supply-chain/python/client.txt), a font for the plot (fonts-dejavu-core) and, for the full run, redis-server.
# Env: BENCH_OUT (results directory), BENCH_VENV (virtualenv), CARGO_TARGET_DIR, BENCH_BEFORE.
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${1:-full}
TARGET=${CARGO_TARGET_DIR:-target}
OUT=${BENCH_OUT:-docs/bench}
VENV=${BENCH_VENV:-${CONFORMANCE_VENV:-$TARGET/conformance-venv}}
export CARGO_TERM_COLOR=never

if [ ! -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ]; then
    apt-get install -y -qq fonts-dejavu-core >/dev/null 2>&1 ||
        { apt-get update -qq && apt-get install -y -qq fonts-dejavu-core; }
fi
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -c 'import trueconf' 2>/dev/null ||
    "$VENV/bin/pip" install --quiet --disable-pip-version-check --require-hashes \
        -r supply-chain/python/client.txt

# Build, then copy the binary out of the (possibly shared) target directory before measuring.
if [ "$MODE" = smoke ]; then
    build=(cargo test --all-features --bench e2e --no-run --message-format=json)
else
    build=(cargo bench --bench e2e --no-run --message-format=json)
fi
exe=$("${build[@]}" | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "e2e" and m.get("executable"):
        print(m["executable"])')
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cp "$exe" "$WORK/e2e"
E2E=("$WORK/e2e")
export BENCH_PY_SCRIPT="$PWD/scripts/bench_echo.py"
PY=(--python "$VENV/bin/python")

echo "machine: $(nproc) cores, $(uname -sr); load average: $(cut -d' ' -f1-3 /proc/loadavg)"
case "$MODE" in
smoke)
    "${E2E[@]}" load --events 1000 --chats 10 --window 50 --bots raw,ours,python "${PY[@]}" \
        --timeout 60 --strict
    "${E2E[@]}" load --events 1000 --chats 1 --window 50 --bots ours --ack handled --strict
    "${E2E[@]}" sweep --chat-counts 1,100 --events 500 --bots ours --strict --png "$WORK/s.png"
    "${E2E[@]}" scale --chats 2000 --idle-ms 1000 --hibernate-ms 100 --max-idle-heap 1024
    ;;
shapes)
    mkdir -p "$OUT"
    BOTS=raw,ours
    # --strict: nothing may be lost or reordered, server closes included; except with an
    # older build beside ours, which may predate the redelivery fix.
    BEFORE=(--strict)
    if [ -n "${BENCH_BEFORE:-}" ]; then
        cp "$BENCH_BEFORE" "$WORK/e2e-before"
        BOTS=raw,ours,before
        BEFORE=(--before-exe "$WORK/e2e-before")
    fi
    L=("${E2E[@]}" load --repeat 3 --bots "$BOTS" "${BEFORE[@]}" --timeout 60)
    "${L[@]}" --chats 100 --events 200000 --window 200 --json "$OUT/shape-100.json"
    "${L[@]}" --chats 10000 --events 40000 --window 2000 --json "$OUT/shape-10k.json"
    "${L[@]}" --chats 1 --events 20000 --window 200 --json "$OUT/shape-1.json"
    "${L[@]}" --chats 100 --events 20000 --window 200 --ack handled --drop-every 2000 \
        --json "$OUT/shape-drop.json"
    # CPU per message of both runtimes for both bots.
    "${L[@]}" --chats 100 --events 200000 --window 200 --bot-workers 1 --raw-workers 0 \
        --json "$OUT/shape-100-flipped.json"
    "${E2E[@]}" scale --chats 1000000 --max-live 10000 --idle-ms 600000 --hibernate-ms 20000 --no-eviction \
        --json "$OUT/scale-1m.json"
    ;;
quick)
    mkdir -p "$OUT"
    "${E2E[@]}" load --repeat 3 --half-rate "${PY[@]}" --json "$OUT/load.json" --strict
    "${E2E[@]}" scale --json "$OUT/scale.json"
    ;;
full)
    mkdir -p "$OUT"
    # 20,000 events over 100 chats, window 200: raw, ours and Python, three runs each
    # (interleaved), then ours and raw paced at half of ours' maximum, for latency.
    "${E2E[@]}" load --repeat 3 --half-rate "${PY[@]}" --json "$OUT/load.json" --strict
    # The same with both Rust bots on a current-thread Tokio runtime.
    "${E2E[@]}" load --repeat 3 --half-rate --bots raw,ours --bot-workers 1 \
        --json "$OUT/load-current-thread.json" --strict
    # At-least-once acknowledgement, and a 5 ms handler (an I/O-bound bot).
    "${E2E[@]}" load --repeat 3 --bots raw,ours --ack handled \
        --json "$OUT/load-ack-handled.json" --strict
    "${E2E[@]}" load --events 5000 --window 1000 --delay-ms 5 --bots ours,python "${PY[@]}" \
        --json "$OUT/load-delay5.json" --strict
    # Throughput and p99 against the number of chats, and the plot.
    "${E2E[@]}" sweep --repeat 3 --json "$OUT/sweep.json" --png "$OUT/sweep.png" --strict
    "${E2E[@]}" scale --json "$OUT/scale.json"
    # Criterion micro-benches (the dispatch bench prints allocations per event first); the
    # FSM bench covers every storage backend, Redis on a throwaway local server.
    command -v redis-server >/dev/null ||
        { apt-get install -y -qq redis-server >/dev/null 2>&1 ||
            { apt-get update -qq && apt-get install -y -qq redis-server; }; }
    REDIS_PORT=$((20000 + RANDOM % 40000))
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no >/dev/null &
    REDIS_PID=$!
    trap 'kill "$REDIS_PID" 2>/dev/null || true; rm -rf "$WORK"' EXIT
    for _ in $(seq 50); do
        redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break
        sleep 0.1
    done
    TRUECONF_TEST_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/" \
    cargo bench --features sqlite,redis --bench dispatch --bench model --bench fsm -- --noplot \
        --warm-up-time 1 --measurement-time 3 2>&1 |
        grep -E 'allocations|time:|thrpt:|^[a-z_]+/' | grep -v '%' | tee "$OUT/criterion.txt"
    ;;
*)
    echo "usage: $0 [full|quick|shapes|smoke]" >&2
    exit 2
    ;;
esac
