#!/usr/bin/env bash
set -u
E=/work/perf-bin/e2e-eng
B=(--before-exe /work/perf-bin/e2e-now)
L=("$E" load --repeat 3 --bots raw,ours,before "${B[@]}" --timeout 60)
echo "### --chats 100 --events 200000 --window 200"; "${L[@]}" --chats 100 --events 200000 --window 200 --json 100.json
echo "### --chats 100 --events 200000 --window 200 --bot-workers 1 --raw-workers 0 (flipped runtimes)"; "${L[@]}" --chats 100 --events 200000 --window 200 --bot-workers 1 --raw-workers 0 --json 100-flipped.json
echo "### --chats 10000 --events 40000 --window 2000"; "${L[@]}" --chats 10000 --events 40000 --window 2000 --json 10k.json
echo "### --chats 1 --events 20000 --window 200"; "${L[@]}" --chats 1 --events 20000 --window 200 --json one.json
echo "### --chats 100 --events 20000 --window 200 --ack handled --drop-every 2000"; "${L[@]}" --chats 100 --events 20000 --window 200 --ack handled --drop-every 2000 --json drop.json
