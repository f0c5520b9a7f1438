"""The seed's ``test_api_url``, kept: the live portal answers 200. It needs the internet,
so it is marked ``network`` and skipped, saying why, where the portal is unreachable."""

from __future__ import annotations

from datetime import datetime

import pytest
import requests

from crimecast.adapters.socrata import CRIMES_DATASET, DEFAULT_URL, SocrataClient

URL = f"{DEFAULT_URL}/resource/{CRIMES_DATASET}.json"
pytestmark = pytest.mark.network


@pytest.fixture(scope="module")
def live() -> None:
    try:
        requests.get(URL, params={"$limit": 1}, timeout=10)
    except requests.RequestException as exc:
        pytest.skip(f"the live portal {DEFAULT_URL} is unreachable from this machine ({type(exc).__name__}); "
                    "this test needs internet access")


def test_api_url(live) -> None:
    response = requests.get(URL, params={"$limit": 1}, timeout=30)
    assert response.status_code == 200


def test_the_live_portal_aggregates_a_month_as_the_client_expects(live) -> None:
    client = SocrataClient(DEFAULT_URL, page_size=50_000)
    rows = [row for page in client.monthly_counts(datetime(2022, 3, 1), datetime(2022, 4, 1)) for row in page]
    assert rows and {"month", "primary_type", "n"} <= set(rows[0])
    assert all(row["month"].startswith("2022-03") for row in rows)
    assert sum(int(row["n"]) for row in rows) == client.incident_total(datetime(2022, 3, 1), datetime(2022, 4, 1))
