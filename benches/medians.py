#!/usr/bin/env python3
"""Prints the median time of every criterion bench as a Markdown table.

Reads `$CARGO_TARGET_DIR/criterion` (default `target/criterion`) after
`cargo bench -p turnpike-benches`. Throughput is the median's, over the bytes the bench
declared (criterion's own report prints the mean's).
"""

import json
import os
import sys
from pathlib import Path


def fmt_time(ns: float) -> str:
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.2f} µs"
    return f"{ns:.1f} ns"


def fmt_rate(nbytes: int, ns: float) -> str:
    gib = nbytes / ns * 1e9 / 2**30
    return f"{gib:.2f} GiB/s" if gib >= 1 else f"{gib * 1024:.0f} MiB/s"


def main() -> int:
    root = Path(os.environ.get("CARGO_TARGET_DIR", "target")) / "criterion"
    rows = []
    for bench in sorted(root.glob("*/*/new/benchmark.json")):
        meta = json.loads(bench.read_text())
        est = json.loads((bench.parent / "estimates.json").read_text())
        median = est["median"]["point_estimate"]
        nbytes = (meta.get("throughput") or {}).get("Bytes")
        rate = fmt_rate(nbytes, median) if nbytes else ""
        rows.append((meta["full_id"], fmt_time(median), rate))
    if not rows:
        print(f"no criterion results under {root}", file=sys.stderr)
        return 1
    print("| bench | median | throughput |")
    print("|---|---:|---:|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
