#!/usr/bin/env bash
# The crate's rust-version (MSRV) is a promise no newer toolchain can check by building, and
# only one toolchain is installed here. Two halves of it are checked instead:
# - our own code: clippy's `incompatible_msrv` lint (on in CI's `clippy -D warnings`) rejects
#   std APIs stabilised after `rust-version`;
# - our dependencies: this script fails when a resolved dependency (any feature) declares a
#   rust-version newer than ours.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo metadata --format-version 1 --all-features --locked | python3 -c '
import json, sys
m = json.load(sys.stdin)
def v(s):
    return tuple(int(x) for x in (s.split(".") + ["0", "0"])[:3])
used = {n["id"] for n in m["resolve"]["nodes"]}
ours = next(p for p in m["packages"] if p["name"] == "trueconf-bot")
msrv = ours["rust_version"]
newer = sorted("%s %s needs %s" % (p["name"], p["version"], p["rust_version"])
               for p in m["packages"]
               if p["id"] in used and p.get("rust_version") and v(p["rust_version"]) > v(msrv))
if newer:
    print("dependencies newer than our rust-version %s:" % msrv, *newer, sep="\n  ")
    sys.exit(1)
print("every dependency declares a rust-version of at most %s" % msrv)
'
