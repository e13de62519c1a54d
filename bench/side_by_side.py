"""This code's list page against an earlier checkout's, in one run: python -m bench.side_by_side --earlier DIR
[--runs 2] [--quick]

Issue 20 asks for the hub's list page at 1.25 times the throughput it had when the issue was written, measured on
this machine side by side. This runs the journey benchmark of each checkout in turn, `runs` times, alternating
(earlier, this, earlier, this, ...), so that both see the same machine, and reports each one's list-page median
(requests a second, from its own `bench.journey_bench`) and this code's over the earlier's, with this code's list
page over its own bare Starlette page on the same stack in the same runs (the issue's other target). Each checkout runs
its own benchmark, on its own data and its own default server stack: the earlier code on its fastest stack, not
the slower one its figure was first measured on, which is the stricter comparison. The earlier checkout needs the
same packages (a worktree with this one's .venv linked in will do: `git worktree add --detach ../earlier 014ef24`).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import ROOT, emit, machine


def list_page(output: dict[str, Any]) -> float:
    """The hub's list-page median from a journey benchmark's JSON, in either shape: one stack (before the stacks
    were compared) or several, the first being the one served by default."""
    pages = output["list_page_vs_bare_starlette"]
    if "stacks" in pages:
        first = next(iter(pages["stacks"].values()))
        return float(first["hub_appointments_page"]["median_requests_per_second"])
    return float(pages["hub_appointments_page"]["median_requests_per_second"])


def ratio_to_bare(output: dict[str, Any]) -> float | None:
    """The list page over the bare Starlette page on the same stack, from the same journey benchmark (the default
    stack's); None from a benchmark too old to say."""
    first = next(iter(output["list_page_vs_bare_starlette"].get("stacks", {}).values()), None)
    return float(first["ratio"]) if first is not None else None


def journey(checkout: Path, extra: list[str]) -> dict[str, Any]:
    argv = [sys.executable, "-m", "bench.journey_bench"]
    if checkout == ROOT:
        argv += ["--stack", "auto"]  # this code's default stack only: the list page is all that is compared
    done = subprocess.run(argv + extra, cwd=checkout, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"the journey benchmark in {checkout} failed:\n{done.stderr[-2000:]}")
    return dict(json.loads(done.stdout))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.side_by_side", description=__doc__)
    parser.add_argument("--earlier", type=Path, required=True, help="a checkout of the earlier code")
    parser.add_argument("--runs", type=int, default=2, help="runs of each, alternating")
    parser.add_argument("--quick", action="store_true", help="each journey benchmark with --quick")
    parser.add_argument("--journey-args", default="", help="more arguments for both journey benchmarks (sizes)")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)
    extra = (["--quick"] if args.quick else []) + args.journey_args.split()
    revision = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=args.earlier, capture_output=True, text=True)
    earlier: list[float] = []
    ours: list[float] = []
    ratios: list[float | None] = []
    for _ in range(args.runs):
        earlier.append(list_page(journey(args.earlier.resolve(), extra)))
        measured = journey(ROOT, extra)
        ours.append(list_page(measured))
        ratios.append(ratio_to_bare(measured))
        print(
            f"earlier {earlier[-1]} list pages a second, this code {ours[-1]} ({ratios[-1]} of its bare page)",
            file=sys.stderr,
        )
    times = statistics.median(ours) / statistics.median(earlier)
    known = [r for r in ratios if r is not None]
    ratio = statistics.median(known) if known else None
    emit(
        {
            "benchmark": "list_page_side_by_side",
            "earlier": {
                "checkout": str(args.earlier),
                "revision": revision.stdout.strip() or None,
                "list_pages_per_second": earlier,
            },
            "this_code": {"list_pages_per_second": ours, "ratio_to_the_bare_page_on_the_same_stack": ratios},
            "times_the_earlier": round(times, 3),
            "targets": {
                "list_page_at_least_1.25_times_the_earlier": {"measured": round(times, 3), "pass": times >= 1.25},
                "list_page_at_least_0.6_of_the_bare_page": {
                    "measured": ratio,
                    "pass": ratio is not None and ratio >= 0.6,
                },
            },
            "machine": machine(),
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
        },
        args.output,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
