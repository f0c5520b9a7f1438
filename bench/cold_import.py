"""Cold import time of each Lambda handler module, printed as JSON.

Each measurement is a fresh interpreter running ``python -X importtime -c 'import app'``
in the function's folder, the way Lambda imports it on a cold start; the figure is the
cumulative time of the ``app`` module, median of ``--repeat`` runs.

Usage: python bench/cold_import.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import statistics
import subprocess
import sys

REPO = Path(__file__).resolve().parents[1]
FUNCTIONS = ("auth", "predict", "evaluate", "ingest", "retrain")
HEAVY = ("pandas", "numpy", "prophet")


def import_once(function: str) -> tuple[float, list[str]]:
    code = f"import sys, app; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    env = {**os.environ, "PYTHONPATH": str(REPO / "shared"), "POWERTOOLS_TRACE_DISABLED": "1", "AWS_DEFAULT_REGION": "us-east-1"}
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", code], cwd=REPO / "functions" / function,
                          capture_output=True, text=True, env=env, check=True)
    last = [line for line in done.stderr.splitlines() if line.rstrip().endswith("| app")][-1]
    return int(last.split("|")[1]) / 1000, [m for m in done.stdout.strip().split(",") if m]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    result = {}
    for function in FUNCTIONS:
        runs = [import_once(function) for _ in range(args.repeat)]
        result[function] = {"median_ms": round(statistics.median(ms for ms, _ in runs), 1),
                            "min_ms": round(min(ms for ms, _ in runs), 1), "heavy_modules_loaded": runs[0][1]}
    print(json.dumps({"python": sys.version.split()[0], "repeat": args.repeat, "handlers": result}, indent=1))


if __name__ == "__main__":
    main()
