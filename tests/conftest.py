"""Shared fixtures: small synthetic series the tests make themselves, the path to the
city's real data (``CRIMECAST_DATA_DIR``, default ``../shared/data``), and the small
fixtures cut from it (tests/fixtures, see README.md there) for where it is absent."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crimecast import settings
from crimecast.tools.data import real_data_dir

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"


def data_source_dir() -> Path:
    """The city's real data folder when it is there, else tests/fixtures: the same file names,
    cut small from the real files (tests/fixtures/make_fixtures.py). Tests that read it
    count what they expect from the files, so they hold on either."""
    try:
        return real_data_dir()
    except FileNotFoundError:
        return FIXTURES


def seasonal_series(start: str = "2012-01", months: int = 96, level: float = 100.0, seed: int = 7) -> pd.Series:
    """Monthly counts with a summer peak and Poisson noise, like a mid-size area's crimes."""
    index = pd.period_range(start, periods=months, freq="M")
    shape = 1 + 0.25 * np.sin(2 * np.pi * (index.month.to_numpy() - 4) / 12)
    rng = np.random.default_rng(seed)
    return pd.Series(rng.poisson(level * shape), index=index, name="test").astype("int64")


def tidy_frame(series: pd.Series, community_area: int | None, primary_type: str) -> pd.DataFrame:
    return pd.DataFrame({
        "month": series.index.astype(str),
        "community_area": "" if community_area is None else str(community_area),
        "primary_type": primary_type,
        "count": series.to_numpy(),
    })


@pytest.fixture(autouse=True)
def fresh_settings() -> Iterator[None]:
    """Each test reads the environment it sets up, as a new Lambda container would."""
    settings.reset()
    yield
    settings.reset()


@pytest.fixture
def source_dir() -> Path:
    """The real data folder or, without it, the fixtures (never skips)."""
    return data_source_dir()


@pytest.fixture
def data_dir() -> Path:
    """The whole real data folder: for the tests marked ``realdata``, skipped without it."""
    try:
        return real_data_dir()
    except FileNotFoundError as missing:
        pytest.skip(str(missing))
