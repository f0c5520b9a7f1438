"""One way for every benchmark to record its figures: ``write(name, figures)`` saves
bench/results/<name>.json with the commit it ran on, the date, the Python, the machine
(cores and load average: the figures are timings on a shared machine) and the command,
and prints the same JSON to stdout.

The tree counts as dirty when a tracked file other than a results file has changes when the
benchmark starts (imports this module); every result says which (``"dirty": false`` or
``true``): a dirty run's figures may not be the commit's.
"""

from __future__ import annotations

from datetime import UTC, datetime
import json
import os
from pathlib import Path
import platform
import subprocess
import sys
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
LOADAVG_START = os.getloadavg()  # when the benchmark imports this module, i.e. before it starts


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=30)
    except OSError:
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _tree() -> dict[str, Any]:
    """The commit checked out, and whether tracked files differ from it (results files aside)."""
    commit = _git("rev-parse", "HEAD")
    dirty = commit is not None and bool(_git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)bench/results"))
    return {"commit": commit, "dirty": dirty}


TREE_START = _tree()  # what the benchmark runs: the tree as it was when it started


def provenance() -> dict[str, Any]:
    """Where and on what the figures were measured."""
    record: dict[str, Any] = dict(TREE_START)
    record |= {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "machine": {"cores": os.cpu_count(), "loadavg_start": [round(x, 2) for x in LOADAVG_START],
                    "loadavg": [round(x, 2) for x in os.getloadavg()], "platform": platform.platform()},
        "command": ["python", *sys.argv],
    }
    return record


def write(name: str, figures: dict[str, Any]) -> Path:
    """Save bench/results/<name>.json and print it; the path written."""
    record = {"benchmark": name, **provenance(), "figures": figures}
    text = json.dumps(record, indent=1)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(text + "\n")
    print(text)
    return path
