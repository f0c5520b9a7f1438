"""The portal client on its own: paging, retries and their limits, the app token."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
import email.utils

import pytest

from crimecast import settings
from crimecast.adapters.socrata import CRIMES_DATASET, PortalError, RetryPolicy, SocrataClient, _retry_after, app_token_from_env
from tests.ingest.conftest import Sleeps, first_area, groups, incidents, page_size, pages

YEAR = (datetime(2022, 1, 1), datetime(2023, 1, 1))


def client(portal, **options) -> SocrataClient:
    settings = {"page_size": page_size(2.5), "timeout": (2.0, 1.0), "sleep": Sleeps(), "retry": RetryPolicy(attempts=3, base_delay=0.01)}
    return SocrataClient(portal.url, **{**settings, **options})


def test_pages_cover_the_groups_once_each(portal) -> None:
    c = client(portal)
    rows = [row for page in c.monthly_counts(*YEAR) for row in page]
    keys = [(r["month"], r.get("community_area"), r["primary_type"]) for r in rows]
    assert len(keys) == len(set(keys)) == groups() and c.stats.pages == pages(page_size(2.5)) > 1  # 3 on the whole extract
    assert sum(int(r["n"]) for r in rows) == c.incident_total(*YEAR) == incidents()
    assert rows[0]["month"] == "2022-01-01T00:00:00.000" and rows[0]["community_area"] == first_area()  # ordered
    assert keys == sorted(keys)
    assert all(isinstance(v, str) for r in rows for v in r.values())  # SODA's JSON: every value a string


def test_paging_without_order_is_refused_because_the_portal_s_order_is_undefined(portal) -> None:
    c = client(portal)
    with pytest.raises(ValueError, match=r"\$order"):
        next(c.pages(CRIMES_DATASET, {"$select": "date"}))
    first, second = (c.get_json(f"/resource/{CRIMES_DATASET}.json", {"$limit": 5, "$select": "id"}) for _ in range(2))
    assert first != second  # without $order each request shuffles anew


def test_a_refused_query_is_not_retried_and_says_why(portal) -> None:
    c = client(portal)
    with pytest.raises(PortalError, match=r"refused .* \(HTTP 400\): cannot read \$where term"):
        c.get_json(f"/resource/{CRIMES_DATASET}.json", {"$where": "date between 1 and 2"})
    assert c.stats.requests == 1


def test_retries_give_up_with_the_last_problem(portal) -> None:
    sleeps = Sleeps()
    portal.add_fault("503", times=-1)
    c = client(portal, sleep=sleeps)
    with pytest.raises(PortalError, match=r"failed 3 times for /resource/ijzp-q8t2.json; last: HTTP 503"):
        c.incident_total(*YEAR)
    assert c.stats.requests == 3 and c.stats.retries == 2 == len(sleeps)
    assert c.stats.problems == ["HTTP 503", "HTTP 503"]


@pytest.mark.parametrize("kind", ["truncate", "garbage", "reset", "slow"])
def test_body_and_connection_faults_are_retried(portal, kind: str) -> None:
    portal.add_fault(kind, times=1, delay=1.5)
    c = client(portal)
    assert c.incident_total(*YEAR) == incidents() and c.stats.retries == 1
    assert any(word in c.stats.problems[0] for word in ("timeout", "cut short", "invalid JSON"))


def test_backoff_doubles_with_jitter_and_is_capped() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=8.0)
    assert [policy.backoff(n, lambda: 0.0) for n in (1, 2, 3, 4, 5)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert [policy.backoff(n, lambda: 1.0) for n in (1, 2, 3, 4, 5)] == [1.0, 2.0, 4.0, 8.0, 8.0]


def test_retry_after_takes_seconds_or_an_http_date() -> None:
    assert _retry_after("7") == 7.0 and _retry_after(None) is None and _retry_after("soon") is None
    later = email.utils.format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 <= _retry_after(later) <= 30
    assert _retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


def test_the_app_token_is_sent_from_the_environment(portal, monkeypatch) -> None:
    monkeypatch.setenv("CRIMECAST_SOCRATA_APP_TOKEN", "token-123")
    c = SocrataClient.from_env(portal.url)
    c.incident_total(*YEAR)
    assert c.app_token == "token-123" and portal.requests[-1]["app_token"] is True
    monkeypatch.delenv("CRIMECAST_SOCRATA_APP_TOKEN")
    settings.reset()  # the environment is read once per process: a new one
    bare = SocrataClient.from_env(portal.url)
    bare.incident_total(*YEAR)
    assert portal.requests[-1]["app_token"] is False


def test_the_app_token_is_read_from_secrets_manager(aws, monkeypatch) -> None:
    import boto3

    arn = boto3.client("secretsmanager").create_secret(Name="socrata-token-test", SecretString="from-the-vault\n")["ARN"]
    monkeypatch.delenv("CRIMECAST_SOCRATA_APP_TOKEN", raising=False)
    monkeypatch.setenv("CRIMECAST_SOCRATA_APP_TOKEN_SECRET_ARN", arn)
    assert app_token_from_env() == "from-the-vault"


def test_probe_says_whether_a_portal_answers(portal) -> None:
    from local.stack import free_port

    assert SocrataClient(portal.url).probe(timeout=2)
    assert not SocrataClient(f"http://127.0.0.1:{free_port()}").probe(timeout=1)
