"""Where the benchmarks find the city's real data: CRIMECAST_DATA_DIR, default ../shared/data."""

from __future__ import annotations

import os
from pathlib import Path
import sys

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "shared"))


def data_dir() -> Path:
    path = Path(os.environ.get("CRIMECAST_DATA_DIR", REPO.parent / "shared" / "data"))
    if not (path / "SOURCES.md").is_file():
        sys.exit(f"error: real city data not found at {path}; set CRIMECAST_DATA_DIR to the folder with SOURCES.md")
    return path
