#!/bin/bash
# callgrind instruction totals: main vs chats, per new conversation and per event.
cd /work/perf-chats
run() { # name exe args...
  local name=$1 exe=$2; shift 2
  valgrind --tool=callgrind --callgrind-out-file=cg-$name.out ./$exe scale --idle-ms 600000 --hibernate-ms 600000 --no-eviction "$@" > $name.log 2>&1
}
for b in ${BOTS:-main chats}; do
  run $b-new5k e2e-$b --chats 5000
  run $b-new15k e2e-$b --chats 15000
  run $b-ev100x200 e2e-$b --chats 100 --rounds 200
  run $b-ev100x600 e2e-$b --chats 100 --rounds 600
done
