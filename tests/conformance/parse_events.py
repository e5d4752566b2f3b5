"""Feeds every event the emulator pushed (JSON lines from tests/event_catalog.rs) to the
official client's own update parser; any event it rejects, or parses into the generic
fallback although it names a known method, fails the run.

Usage: python parse_events.py EVENTS_JSONL
"""

import json
import sys

from trueconf.types.parser import parse_update
from trueconf.types.update import Update


def main() -> int:
    failures = []
    kinds = set()
    with open(sys.argv[1]) as f:
        lines = [line for line in f if line.strip()]
    for number, line in enumerate(lines, 1):
        raw = json.loads(line)
        kinds.add(raw["method"])
        try:
            parsed = parse_update(raw)
        except Exception as e:  # the client's models raise many kinds of errors
            failures.append(f"line {number} ({raw['method']}): {type(e).__name__}: {e}")
            continue
        if parsed is None or isinstance(parsed, Update):
            failures.append(f"line {number} ({raw['method']}): not parsed into a model: {parsed!r}")
    for failure in failures:
        print(failure, file=sys.stderr)
    print(f"parse_events: {len(lines)} events of {len(kinds)} kinds, {len(failures)} rejected")
    return 1 if failures or not lines else 0


if __name__ == "__main__":
    sys.exit(main())
