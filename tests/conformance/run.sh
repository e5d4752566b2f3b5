#!/usr/bin/env bash
# Conformance: the official Python client (python-trueconf-bot) against trueconf-sim.
# Creates a virtualenv, installs the client, starts the emulator in --script mode and a small
# Python bot; the script plays a user and checks every answer. Then every event the emulator
# pushes (tests/event_catalog.rs) goes through the client's own parser. Non-zero exit on any
# failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
TARGET=${CARGO_TARGET_DIR:-target}
VENV=${CONFORMANCE_VENV:-$TARGET/conformance-venv}

[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
# Pinned and hash-checked (supply-chain/python/client.txt; regenerate with pip-compile, see
# supply-chain/python/README.md).
"$VENV/bin/pip" install --quiet --disable-pip-version-check --require-hashes \
    -r supply-chain/python/client.txt
cargo build --quiet --features testkit --bin trueconf-sim

WORK=$(mktemp -d)
SIM_PID=""
BOT_PID=""
cleanup() {
    [ -n "$BOT_PID" ] && kill "$BOT_PID" 2>/dev/null || true
    [ -n "$SIM_PID" ] && kill "$SIM_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# One run over plain HTTP/WS, one over TLS with a self-signed certificate (verify_ssl=False).
for mode in plain tls; do
    flags=()
    [ "$mode" = tls ] && flags=(--tls)
    rm -f "$WORK/info.json"
    "$TARGET/debug/trueconf-sim" --port 0 --info-file "$WORK/info.json" "${flags[@]}" \
        --script tests/conformance/script.txt --connect-timeout 90 >"$WORK/sim.log" 2>&1 &
    SIM_PID=$!
    for _ in $(seq 100); do
        [ -s "$WORK/info.json" ] && break
        sleep 0.1
    done
    [ -s "$WORK/info.json" ] || { cat "$WORK/sim.log"; echo "conformance: trueconf-sim did not start" >&2; exit 1; }

    "$VENV/bin/python" tests/conformance/bot.py "$WORK/info.json" >"$WORK/bot.log" 2>&1 &
    BOT_PID=$!

    status=0
    wait "$SIM_PID" || status=$?
    SIM_PID=""
    kill "$BOT_PID" 2>/dev/null || true
    wait "$BOT_PID" 2>/dev/null || true
    BOT_PID=""
    if [ "$status" -ne 0 ]; then
        echo "---- trueconf-sim log ($mode)" >&2; cat "$WORK/sim.log" >&2
        echo "---- python bot log ($mode)" >&2; cat "$WORK/bot.log" >&2
        echo "conformance ($mode): FAILED" >&2
        exit "$status"
    fi
    cat "$WORK/sim.log"
    echo "conformance ($mode): passed"
done

# Every event the emulator pushes, parsed by the client's own models (tests/event_catalog.rs
# records them; the test binary is already built by the test step of .ci/run).
TRUECONF_EVENT_DUMP="$WORK/events.jsonl" cargo test --quiet --all-features \
    --test event_catalog >"$WORK/catalog.log" 2>&1 || { cat "$WORK/catalog.log" >&2; exit 1; }
"$VENV/bin/python" tests/conformance/parse_events.py "$WORK/events.jsonl"
