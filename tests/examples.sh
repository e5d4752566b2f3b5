#!/usr/bin/env bash
# Runs every example against the embedded emulator and checks what it prints, then runs the
# echo example as a real bot against a separate `trueconf-sim` process (plain with a load run
# and Ctrl-C, and TLS with a custom CA and --once), configured through the environment.
# Builds once; every run has a time limit. Exit status: the number of failed checks.
set -uo pipefail
cd "$(dirname "$0")/.."
TARGET=${CARGO_TARGET_DIR:-target}
LIMIT=${EXAMPLE_TIMEOUT:-60}

cargo build --quiet --examples --bins --all-features || exit 1
# Copies, so a concurrent build in a shared target dir cannot swap a binary mid-run.
BIN=$(mktemp -d)
trap 'rm -rf "$BIN"' EXIT
for src in examples/*.rs; do
    name=$(basename "$src" .rs)
    cp "$TARGET/debug/examples/$name" "$BIN"/ || exit 1
done
cp "$TARGET/debug/trueconf-sim" "$BIN"/ || exit 1

failed=0
pass() { echo "ok   $1"; }
fail() {
    echo "FAIL $1"
    [ -n "${2:-}" ] && sed 's/^/     | /' "$2" | tail -40
    failed=$((failed + 1))
}

# check NAME "ARGS" PATTERN…: runs the example with ARGS; it must exit 0 within the time limit
# and print every PATTERN (fixed strings).
check() {
    local name=$1 args=$2
    shift 2
    local out="$BIN/$name.$RANDOM.out"
    # shellcheck disable=SC2086
    if ! timeout "$LIMIT" "$BIN/$name" $args >"$out" 2>&1; then
        fail "$name $args (exit status $?)" "$out"
        return
    fi
    for pattern in "$@"; do
        if ! grep -qF -- "$pattern" "$out"; then
            fail "$name $args: no \"$pattern\" in the output" "$out"
            return
        fi
    done
    pass "$name $args"
}

SQLITE_DB="$BIN/form.db"

check quickstart "" "alice > /start" "bot < Hi alice!" "bot < Hello, bot!" "-- done:"
check echo "" "bob > Hello from Bob" "bot < Hello from Bob" "🦀" "-- done:"
check echo "--ack-mode after-handled --load 2000 --load-chats 50" \
    '"sent":2000,"replied":2000' '"order_violations":0'
check commands "" "2 + 40 = 42" "usage: /add <a> <b>" "expected 2 arguments, got 1" \
    "sum of 3 numbers = 6.5" "unknown command /frobnicate"
check fsm_form "" "How old are you?" "Registered Anna, 34" "You are Anna, 34." "Cancelled."
check fsm_form "--sqlite $SQLITE_DB" "restarting the bot" "Register Ann, 33?" "You are Anna, 34."
check multi_chat "" "Team < #1 team1, #2 team2, #3 team3, #4 team4, #5 team5   (in order)" \
    "bot < #6 hi team"
check survey "" "[Pizza] [Sushi] [Salad]" "Pizza: 2 · Sushi: 1" "Pizza wins with 2 of 3 votes" \
    "[survey card] Team satisfaction 2026"
check admin "" "bob@sim.example is now admin" "title changed to «Release 1.0 team»" \
    "3 members" "dave@sim.example is now writer"
check middleware "" "(no answer: banned)" "Sorry, /admin is for administrators." \
    "Slow down: 3 messages per 10 s." "(no answer: throttled)"
check file_bot "" "alice * uploads holiday.mp4" "[bot] downloaded holiday.mp4 (8388608 bytes)" \
    "the same size as sent"
# The official client's examples, ported (docs/porting.md).
check webhook "" 'curl < GET /health: "authorized"' "curl < 200" "bot < Build #42 passed" "bot < Deploy to staging: done" \
    "curl < 502 Bad Gateway (an empty text is refused)" "-- done:"
check buttons_bot "" "bot < (edited) Counter: 2  [−1] [+1] [Done]" "bot < (edited) Counter: 1 (final)" "-- done:"
check contacts "" "vCard: Anna Petrova, +7 900 123-45-67" "vCard: Иван Петров" \
    "TrueConf contact: Carol (carol@sim.example)" "BEGIN:VCARD without END:VCARD" "-- done:"
check report_bot "" "Added to the ticket (2 so far)." "|  [attachment jam.png" \
    "was sent to technical support." "was cancelled." "-- done:"
check update_token "" "reconnected with a new token" "bot < You said: **still there?**" "-- done:"
check add_big_list_users_to_channel "" "added 150, already members 2, failed 2" \
    "the channel has 151 participants"
check multi_bot "" "bot < ping" "bot < Forwarded to HR" "HR inbox < [forwarded]" "-- done:"
check runtime_echo "" '"sent":20000,"replied":20000' '"order_violations":0'
check filters "" "bot < pong" "Check passed for: /verify with args: yes" \
    "Special echo: echo_42 boo" "/upper — upper case (more than 3 characters)" "-- done:"
for example in quickstart echo commands fsm_form multi_chat survey admin middleware file_bot filters \
    webhook buttons_bot contacts report_bot update_token add_big_list_users_to_channel multi_bot; do
    check "$example" "--help" "--server" "--token" "--username" "--insecure" "--for-seconds" \
        "--metrics"
done

# A real bot process against a separate emulator process, configured by environment variables.
wait_for_file() {
    for _ in $(seq 100); do
        [ -s "$1" ] && return 0
        sleep 0.1
    done
    return 1
}
# The response to GET PATH on 127.0.0.1:PORT, through bash's /dev/tcp (no curl needed).
http_get() {
    exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
    printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$2" >&3
    cat <&3
    exec 3<&-
}
json_field() { sed -n "s/.*\"$2\": *\"\{0,1\}\([^\",}]*\).*/\1/p" "$1" | head -1; }

# 1. Plain ws://, token login: the emulator's load generator drives the echo bot, then the bot
#    is stopped with Ctrl-C (SIGINT) and must shut down cleanly.
"$BIN/trueconf-sim" --port 0 --info-file "$BIN/plain.json" --load 1000 --load-chats 20 \
    --connect-timeout 30 >"$BIN/sim-plain.out" 2>&1 &
SIM=$!
if wait_for_file "$BIN/plain.json"; then
    # The info file holds a token: only its owner may read it.
    if [ "$(stat -c %a "$BIN/plain.json")" = 600 ]; then
        pass "trueconf-sim writes its info file 0600"
    else
        fail "trueconf-sim info file mode is $(stat -c %a "$BIN/plain.json")" "$BIN/sim-plain.out"
    fi
    # Without --bot the bot account's password is drawn at random, never a known default.
    pw=$(sed -n 's/^bot login: bot, password: //p' "$BIN/sim-plain.out")
    if [ "${#pw}" -ge 16 ] && [ "$pw" != bot-password ]; then
        pass "trueconf-sim draws a random bot password"
    else
        fail "trueconf-sim bot password is ${pw:-missing}" "$BIN/sim-plain.out"
    fi
    TRUECONF_SERVER=127.0.0.1 TRUECONF_PORT=$(json_field "$BIN/plain.json" port) \
        TRUECONF_NO_TLS=true TRUECONF_TOKEN=$(json_field "$BIN/plain.json" token) \
        timeout "$LIMIT" "$BIN/echo" --quiet --metrics 127.0.0.1:0 >"$BIN/echo-plain.out" 2>&1 &
    BOT=$!
    if timeout "$LIMIT" tail --pid=$SIM -f /dev/null && wait $SIM &&
        grep -qF '"replied":1000' "$BIN/sim-plain.out"; then
        # The bot's /metrics counted exactly what the load generator pushed and got back.
        port=$(sed -n 's|^-- metrics at http://127.0.0.1:\([0-9]*\)/metrics$|\1|p' "$BIN/echo-plain.out")
        if [ -n "$port" ] && http_get "$port" /metrics >"$BIN/metrics.out" &&
            grep -qF 'trueconf_events_received_total{kind="message"} 1000' "$BIN/metrics.out" &&
            grep -qF 'trueconf_events_handled_total{kind="message",outcome="handled"} 1000' \
                "$BIN/metrics.out" &&
            http_get "$port" /health/live | grep -qF "200 OK"; then
            pass "echo --metrics: /metrics counters match the load run"
        else
            fail "echo --metrics: counters do not match the load run" "$BIN/metrics.out"
        fi
        kill -INT $BOT 2>/dev/null
        if wait $BOT && grep -qF -- "-- stopped: 1000 events, 1000 handled" "$BIN/echo-plain.out"; then
            pass "echo as a real bot (ws, token from env, load run, Ctrl-C)"
        else
            fail "echo did not stop cleanly on Ctrl-C" "$BIN/echo-plain.out"
        fi
    else
        kill $BOT 2>/dev/null
        fail "load run against the echo bot" "$BIN/sim-plain.out"
    fi
else
    fail "trueconf-sim did not start" "$BIN/sim-plain.out"
fi
kill $SIM 2>/dev/null

# 2. wss:// with the emulator's self-signed certificate trusted through --ca-cert, password
#    login, and --once: the bot stops by itself after its first handled event.
cat >"$BIN/script.txt" <<'EOF'
wait-bot 30
p2p alice
send alice hello over TLS
expect alice hello over TLS
EOF
"$BIN/trueconf-sim" --port 0 --tls --cert-out "$BIN/ca.pem" --info-file "$BIN/tls.json" \
    --bot bot:bot-password --script "$BIN/script.txt" --connect-timeout 30 >"$BIN/sim-tls.out" 2>&1 &
SIM=$!
if wait_for_file "$BIN/tls.json" && wait_for_file "$BIN/ca.pem"; then
    if timeout "$LIMIT" "$BIN/echo" --server 127.0.0.1 --port "$(json_field "$BIN/tls.json" port)" \
        --ca-cert "$BIN/ca.pem" --username bot --password bot-password --once \
        >"$BIN/echo-tls.out" 2>&1 && grep -qF -- "-- first event handled (--once)" "$BIN/echo-tls.out" &&
        wait $SIM; then
        pass "echo as a real bot (wss, custom CA, password login, --once)"
    else
        cat "$BIN/sim-tls.out" >>"$BIN/echo-tls.out"
        fail "echo over TLS with --ca-cert" "$BIN/echo-tls.out"
    fi
else
    fail "trueconf-sim --tls did not start" "$BIN/sim-tls.out"
fi
kill $SIM 2>/dev/null

echo "examples: $failed failed"
exit "$failed"
