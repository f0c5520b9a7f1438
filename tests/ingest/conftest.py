"""Ingest tests: moto for AWS (the functions' ``aws`` fixture) and the portal stand-in
(local/portal.py) over the city's real rows, so nothing needs the network."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from crimecast.adapters.socrata import RetryPolicy, SocrataClient
from crimecast.adapters.stores import Stores
from crimecast.domain.series import MonthlyCounts
from crimecast.jobs import ingest, pipeline
from crimecast.jobs.counts import load_counts
from local.portal import StandInPortal
from tests.functions.conftest import aws  # noqa: F401 - the fixture, shared

# The stand-in's rows run to 2022-11-30 23:59; a week and more later every month is whole.
AS_OF = date(2022, 12, 10)
KEY = ["month", "community_area", "primary_type"]


@pytest.fixture(scope="package")  # stopped after this package: later tests fork, and must not inherit its thread
def portal_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandInPortal]:
    from crimecast.tools.data import real_data_dir

    try:
        folder = real_data_dir()
    except FileNotFoundError as missing:
        pytest.skip(str(missing))
    with StandInPortal("csv", folder) as portal:
        yield portal


@pytest.fixture
def portal(portal_server: StandInPortal) -> Iterator[StandInPortal]:
    portal_server.state.reset()
    portal_server.state.set_now(None)
    yield portal_server
    portal_server.state.reset()
    portal_server.state.set_now(None)


class Sleeps(list):
    """Stands in for time.sleep: records the waits, waits for none of them."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def portal_source(portal: StandInPortal, as_of: date = AS_OF, sleeps: Sleeps | None = None, **options: Any) -> ingest.PortalSource:
    """A source on the stand-in with small pages and quick, recorded back-offs."""
    settings: dict[str, Any] = {"page_size": 2000, "timeout": (2.0, 1.0), "sleep": sleeps if sleeps is not None else Sleeps(),
                                "retry": RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.05)}
    settings.update(options)
    return ingest.PortalSource(SocrataClient(portal.url, **settings), as_of)


def run(stores: Stores, source: Any, **options: Any) -> dict[str, Any]:
    options.setdefault("as_of", getattr(source, "as_of", AS_OF))
    return pipeline.ingest_now(stores, "test", source, **options)


def cells(counts: MonthlyCounts) -> pd.Series:
    """Every (month, area, type) count at every level, sorted: two tables compare with equals."""
    frame = counts.frame.assign(month=counts.frame["month"].astype(str))
    return frame.set_index(KEY)["count"].sort_index()


def stored(stores: Stores) -> pd.Series:
    return cells(load_counts(stores))


def assert_same_counts(actual: pd.Series, expected: pd.Series) -> None:
    diff = actual.sub(expected, fill_value=0)
    assert not diff.any(), f"{int((diff != 0).sum())} cells differ, e.g.\n{diff[diff != 0].head()}"
    assert len(actual) == len(expected)


def recount(portal: StandInPortal) -> pd.Series:
    """The stand-in's visible incidents counted by the domain, one row per incident."""
    from crimecast.domain.series import counts_from_frame

    return cells(counts_from_frame(portal.state.source_frame()))


def csv_path() -> Path:
    from crimecast.tools.data import real_data_dir

    return real_data_dir() / "crimes_2022_jan_nov_slim.csv.gz"


@cache
def file_recount() -> pd.Series:
    """The portal's CSV export of 2022, counted row by row by the domain (read once)."""
    from crimecast.domain.series import read_counts

    return cells(read_counts(csv_path()))
