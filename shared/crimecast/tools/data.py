"""Where the city's real data lives on a developer's machine or in CI.

It stays outside the repository (``../shared/data`` beside it by default) and is found
through ``CRIMECAST_DATA_DIR``, so tests, benchmarks and the demo read it in place.
"""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR_ENV = "CRIMECAST_DATA_DIR"
AREA_TYPE_FILE = "area_type_monthly_2001_2018.csv.gz"  # every area x type, 2001-01..2018-10 (SOURCES.md)
# every area x type, 2024-01..2024-12 (SOURCES.md): joined to the file above, it leaves a gap 2018-11..2023-12
AREA_TYPE_RECENT_FILES = ("area_type_monthly_2024.csv",)
_REPO = Path(__file__).resolve().parents[3]


def default_data_dir() -> Path:
    return Path(os.environ.get(DATA_DIR_ENV, _REPO.parent / "shared" / "data"))


def real_data_dir() -> Path:
    """The data folder, or an error that says where it was looked for and how to point elsewhere."""
    path = default_data_dir()
    if not (path / "SOURCES.md").is_file():
        raise FileNotFoundError(f"real city data not found at {path}: set {DATA_DIR_ENV} to the folder with SOURCES.md")
    return path
