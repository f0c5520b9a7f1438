"""Cold import time of each Lambda handler module, printed as JSON.

Each measurement is a fresh interpreter running ``python -X importtime -c 'import app'``
in the function's folder, the way Lambda imports it on a cold start; the figure is the
cumulative time of the ``app`` module, median of ``--repeat`` runs. Beside them,
``powertools_floor`` is an app.py importing only what every handler needs from
Powertools (Logger, Metrics and the REST resolver), so the share of our own code shows, and
``xray_sdk`` and ``pydantic`` import only those libraries (what the Tracer and request
validation each bring, the part the predict handler does without). Runs are
interleaved across handlers, so machine noise spreads evenly over all of them.

Usage: python bench/cold_import.py [--repeat 11]
"""

from __future__ import annotations

import argparse
from collections import defaultdict
import os
from pathlib import Path
import statistics
import subprocess
import sys
import tempfile

from results import write

REPO = Path(__file__).resolve().parents[1]
FUNCTIONS = ("auth", "predict", "evaluate", "ingest", "retrain")
HEAVY = ("pandas", "numpy", "prophet", "pydantic", "boto3")
FLOOR = """from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver
"""
# The variables the template gives the functions, checked at import (crimecast.settings); never used here.
FUNCTION_ENV = {"DATA_BUCKET": "bench", "SERIES_TABLE": "bench-series", "RUNS_TABLE": "bench-runs", "USERS_TABLE": "bench-users",
                "LOGIN_ATTEMPTS_TABLE": "bench-login-attempts",
                "JWT_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:000000000000:secret:bench", "IDEMPOTENCY_TABLE": "bench-idempotency",
                "RETRAIN_STATE_MACHINE_ARN": "arn:aws:states:us-east-1:000000000000:stateMachine:bench"}
# Alone, in a fresh interpreter: the cost of each library the predict handler leaves out.
LIBRARIES = {"xray_sdk": "import aws_xray_sdk.core\n", "pydantic": "from pydantic import BaseModel\n"}


def import_once(folder: Path, bytecode: Path) -> tuple[float, list[str]]:
    """Milliseconds to import ``folder``'s app.py (cumulative, from -X importtime), and the heavy modules it loaded.

    Bytecode is cached under ``bytecode`` for every module, ours as well as the libraries'
    (pip leaves theirs compiled), so no run pays for compiling source.
    """
    code = f"import sys, app; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    env = {**os.environ, "PYTHONPATH": str(REPO / "shared"), "POWERTOOLS_TRACE_DISABLED": "1", "AWS_DEFAULT_REGION": "us-east-1",
           "PYTHONPYCACHEPREFIX": str(bytecode), **FUNCTION_ENV}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", code], cwd=folder, capture_output=True, text=True,
                          env=env, check=True)
    last = [line for line in done.stderr.splitlines() if line.rstrip().endswith("| app")][-1]
    return int(last.split("|")[1]) / 1000, [m for m in done.stdout.strip().split(",") if m]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=11)
    args = parser.parse_args()
    probes = {name: REPO / "functions" / name for name in FUNCTIONS}
    runs: dict[str, list[tuple[float, list[str]]]] = defaultdict(list)
    with tempfile.TemporaryDirectory() as floor, tempfile.TemporaryDirectory() as bytecode:
        (Path(floor) / "app.py").write_text(FLOOR)
        probes["powertools_floor"] = Path(floor)
        for name, code in LIBRARIES.items():
            probes[name] = Path(floor) / name
            probes[name].mkdir()
            (probes[name] / "app.py").write_text(code)
        for folder in probes.values():  # warm-up: fills the bytecode cache
            import_once(folder, Path(bytecode))
        for _ in range(args.repeat):
            for name, folder in probes.items():
                runs[name].append(import_once(folder, Path(bytecode)))
    result = {name: {"median_ms": round(statistics.median(ms for ms, _ in measured), 1),
                     "min_ms": round(min(ms for ms, _ in measured), 1), "heavy_modules_loaded": measured[0][1]}
              for name, measured in runs.items()}
    write("cold_import", {"repeat": args.repeat, "handlers": result})


if __name__ == "__main__":
    main()
