"""Ingest tests: moto for AWS (the functions' ``aws`` fixture) and the portal stand-in
(local/portal/) over the city's real rows, so nothing needs the network. The rows are the
whole 2022 extract when ../shared/data is there, else three areas of it (tests/fixtures):
the totals the tests expect are counted from whichever file is served."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from functools import cache
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from crimecast.adapters.socrata import RetryPolicy, SocrataClient
from crimecast.adapters.stores import Stores
from crimecast.domain.series import MonthlyCounts
from crimecast.jobs import ingest, pipeline
from crimecast.jobs.counts import load_counts
from local.portal.server import StandInPortal
from tests.conftest import data_source_dir
from tests.functions.conftest import aws, functions, iam_roles  # noqa: F401 - the fixtures, shared

# The stand-in's rows run to 2022-11-30 23:59; a week and more later every month is whole.
AS_OF = date(2022, 12, 10)
# Long enough for the stand-in to aggregate a year on a busy 2-core machine; the "slow" fault outlasts it.
READ_TIMEOUT_S = 4.0
KEY = ["month", "community_area", "primary_type"]


@pytest.fixture(scope="package")  # stopped after this package: later tests fork, and must not inherit its thread
def portal_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandInPortal]:
    with StandInPortal("csv", data_source_dir()) as portal:
        yield portal


APP_TOKEN = "test-app-token"  # SODA 3 refuses requests without one
PROTOCOLS = ("soda3", "soda2.1")


@pytest.fixture(params=PROTOCOLS)
def portal(portal_server: StandInPortal, request: pytest.FixtureRequest,
           monkeypatch: pytest.MonkeyPatch) -> Iterator[StandInPortal]:
    """The stand-in as the city's portal is now (SODA 3, with SODA 2.1 beside it), and as a
    portal without SODA 3 (404 on its path: the client falls back to 2.1); every test that
    reads the portal runs on both. Clients carry an app token (``APP_TOKEN``, also in the
    environment for the clients built from it)."""
    from crimecast import settings

    portal_server.state.reset()
    portal_server.state.set_now(None)
    portal_server.serve_soda3(request.param == "soda3")
    portal_server.protocol = request.param  # type: ignore[attr-defined]
    monkeypatch.setenv("CRIMECAST_SOCRATA_APP_TOKEN", APP_TOKEN)
    settings.reset()
    yield portal_server
    portal_server.state.reset()
    portal_server.state.set_now(None)
    settings.reset()


def data_requests(portal: StandInPortal) -> list[dict[str, Any]]:
    """The requests that were answered with rows of the crimes dataset (not the boundaries)."""
    return [r for r in portal.requests if r.get("status") == 200 and "igwz" not in r["path"]]


class Sleeps(list):
    """Stands in for time.sleep: records the waits, waits for none of them."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def portal_source(portal: StandInPortal, as_of: date = AS_OF, sleeps: Sleeps | None = None, **options: Any) -> ingest.PortalSource:
    """A source on the stand-in with small pages and quick, recorded back-offs."""
    settings: dict[str, Any] = {"app_token": APP_TOKEN, "page_size": page_size(), "timeout": (2.0, READ_TIMEOUT_S),
                                "sleep": sleeps if sleeps is not None else Sleeps(),
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
    return data_source_dir() / "crimes_2022_jan_nov_slim.csv.gz"


@cache
def _source_rows() -> pd.DataFrame:
    raw = pd.read_csv(csv_path(), usecols=["Date", "Community Area", "Primary Type"], dtype=str, keep_default_na=False)
    return raw.assign(month=raw["Date"].str[:7])


def incidents() -> int:
    """The incidents the stand-in serves: one per row of the file (215,551 in the whole extract)."""
    return len(_source_rows())


def groups() -> int:
    """The (month, area, type) groups of 2022 the portal pages through (13,281 in the whole extract)."""
    return _source_rows().groupby(["month", "Community Area", "Primary Type"]).ngroups


def first_area() -> str:
    """The community area that sorts first as text, as the portal orders it."""
    return min(_source_rows()["Community Area"])


def page_size(times: float = 1) -> int:
    """Pages of 2,000 groups on the whole extract (7 pages for 2022); 200 on the fixture's three
    areas, so paging still takes several pages there."""
    return int(times * (2000 if groups() > 10_000 else 200))


def pages(size: int) -> int:
    """How many pages 2022's groups take at this page size."""
    return math.ceil(groups() / size)


@cache
def file_recount() -> pd.Series:
    """The portal's CSV export of 2022, counted row by row by the domain (read once)."""
    from crimecast.domain.series import read_counts

    return cells(read_counts(csv_path()))
