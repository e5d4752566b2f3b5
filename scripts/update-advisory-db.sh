#!/usr/bin/env bash
# The RustSec advisory database for `cargo deny`, vendored in supply-chain/advisory-db because CI
# reaches package registries only (no GitHub).
#
#   scripts/update-advisory-db.sh update [SOURCE]
#       Refreshes the snapshot from SOURCE: a clone of https://github.com/rustsec/advisory-db
#       (bare or not; default: a fresh shallow clone). Keeps only `crates/` (the advisories for
#       crates.io packages; `rust/` covers the toolchain, which cargo-deny does not check) and
#       records the commit and its date in supply-chain/advisory-db/SNAPSHOT. Commit the result.
#
#   scripts/update-advisory-db.sh check-age [MAX_DAYS]
#       Fails when the snapshot is older than MAX_DAYS (default 90): advisories published
#       since then would go unseen. A dated waiver (supply-chain/advisory-db/WAIVER: a line
#       `until YYYY-MM-DD` of at most 30 days ahead and a reason) turns the failure into a
#       warning until that day, for when no newer copy of the database can be reached.
#
#   scripts/update-advisory-db.sh prepare
#       Turns the snapshot into what cargo-deny 0.20 opens with --offline: a git checkout at
#       `<db-path>/advisory-db-3157b0e258782691` (the directory name is derived from the URL in
#       deny.toml; cargo-deny reads the HEAD commit's date from it). db-path is target/advisory-dbs.
set -euo pipefail
cd "$(dirname "$0")/.."
SNAP=supply-chain/advisory-db
DB=target/advisory-dbs/advisory-db-3157b0e258782691

case "${1:-}" in
update)
  src="${2:-}"
  tmp=""
  if [ -z "$src" ]; then
    tmp=$(mktemp -d)
    git clone --quiet --depth 1 https://github.com/rustsec/advisory-db "$tmp/db"
    src="$tmp/db"
  fi
  rev=$(git -C "$src" rev-parse HEAD)
  date=$(git -C "$src" log -1 --format=%cI HEAD)
  rm -rf "$SNAP"
  mkdir -p "$SNAP"
  git -C "$src" archive HEAD crates LICENSE.txt | tar -x -C "$SNAP"
  printf 'commit %s\ndate %s\n' "$rev" "$date" >"$SNAP/SNAPSHOT"
  [ -n "$tmp" ] && rm -rf "$tmp"
  echo "advisory-db snapshot $rev ($date)"
  ;;
check-age)
  max=${2:-90}
  date=$(sed -n 's/^date //p' "$SNAP/SNAPSHOT")
  age=$(( ($(date +%s) - $(date -d "$date" +%s)) / 86400 ))
  if [ "$age" -le "$max" ]; then
    echo "advisory-db snapshot is $age days old (limit $max)"
    exit 0
  fi
  msg="advisory-db snapshot from $date is $age days old (limit $max): refresh it with
  scripts/update-advisory-db.sh update   # or: update /path/to/a/clone/of/rustsec/advisory-db
and commit supply-chain/advisory-db"
  waiver="$SNAP/WAIVER"
  if [ -f "$waiver" ]; then
    until=$(sed -n 's/^until //p' "$waiver")
    now=$(date +%s)
    end=$(date -d "$until" +%s 2>/dev/null || echo 0)
    if [ "$end" -ge "$now" ] && [ "$end" -le $((now + 31 * 86400)) ]; then
      echo "WARNING: $msg" >&2
      echo "WARNING: waived until $until: $(grep -v '^until ' "$waiver" | tr '\n' ' ')" >&2
      exit 0
    fi
    echo "the waiver in $waiver is expired or more than 30 days ahead ($until)" >&2
  fi
  echo "error: $msg" >&2
  exit 1
  ;;
prepare)
  date=$(sed -n 's/^date //p' "$SNAP/SNAPSHOT")
  rm -rf "$DB"
  mkdir -p "$DB"
  cp -r "$SNAP/crates" "$DB/"
  git -C "$DB" init --quiet
  git -C "$DB" add -A
  GIT_AUTHOR_DATE="$date" GIT_COMMITTER_DATE="$date" git -C "$DB" \
    -c user.name=snapshot -c user.email=snapshot@invalid commit --quiet -m "advisory-db snapshot"
  ;;
*)
  echo "usage: $0 update [SOURCE] | check-age [MAX_DAYS] | prepare" >&2
  exit 2
  ;;
esac
