"""`python -m benchmarks` (`make bench`): the server benchmark, then the browser one if it exists.

Always exits 0 once the figures are printed: a MISS is a finding, not a failure.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
from pathlib import Path

from . import server


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--tabs", default="10,50,100", help="comma-separated tab counts (default 10,50,100)")
    parser.add_argument(
        "--seconds", type=float, default=15.0, help="streaming time per scenario (default 15)"
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also save every figure as JSON here")
    args = parser.parse_args()
    tabs = tuple(int(n) for n in args.tabs.split(","))

    results = {"server": server.run(tabs, args.seconds)}
    print(server.table(results["server"]))
    if importlib.util.find_spec("benchmarks.browser") is not None:
        browser = importlib.import_module("benchmarks.browser")
        results["browser"] = browser.run()
        print()
        print(browser.table(results["browser"]))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
