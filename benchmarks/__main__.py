"""`python -m benchmarks` (`make bench`): the server benchmark, then the browser ones (the page's audio
path, and how soon a greeting is heard) if they exist.

Always exits 0 once the figures are printed: a MISS is a finding, not a failure.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
from pathlib import Path

from . import capacity, hostile, server


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--tabs", default="10,50,100", help="comma-separated tab counts (default 10,50,100)")
    parser.add_argument(
        "--seconds", type=float, default=15.0, help="streaming time per scenario (default 15)"
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also save every figure as JSON here")
    parser.add_argument("--hostile-seconds", type=float, default=30.0,
                        help="how long attackers are held in the hostile benchmark (default 30; 0 skips it)")
    parser.add_argument("--per-core", default="300,600",
                        help="tab counts for the tabs-per-core figure (default 300,600; empty skips it)")
    parser.add_argument("--only", choices=("server", "hostile", "browser", "greeting", "capacity"), help="run just one benchmark")
    args = parser.parse_args()
    tabs = tuple(int(n) for n in args.tabs.split(","))
    per_core = tuple(int(n) for n in args.per_core.split(",") if n)

    results = {}
    if args.only in (None, "server"):
        results["server"] = server.run(tabs, args.seconds)
        print(server.table(results["server"]))
    if args.only in (None, "hostile") and (args.hostile_seconds > 0 or per_core):
        results["hostile"] = hostile.run(args.hostile_seconds, per_core)
        print()
        print(hostile.table(results["hostile"]))
    if args.only in (None, "capacity"):
        results["capacity"] = capacity.run()
        print()
        print(capacity.table(results["capacity"]))
    if args.only in (None, "browser") and importlib.util.find_spec("benchmarks.browser") is not None:
        browser = importlib.import_module("benchmarks.browser")
        results["browser"] = browser.run()
        print()
        print(browser.table(results["browser"]))
    if args.only in (None, "greeting") and importlib.util.find_spec("benchmarks.browser") is not None:
        greeting = importlib.import_module("benchmarks.greeting")
        results["greeting"] = greeting.run()
        print()
        print(greeting.table(results["greeting"]))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
