"""The portal client on its own: paging, retries and their limits, the app token."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
import email.utils

import pytest

from crimecast import settings
from crimecast.adapters.socrata import CRIMES_DATASET, PortalError, RetryPolicy, SocrataClient, _retry_after, app_token_from_env
from crimecast.domain.errors import ConfigurationError
from tests.ingest.conftest import APP_TOKEN, Sleeps, data_requests, first_area, groups, incidents, page_size, pages

YEAR = (datetime(2022, 1, 1), datetime(2023, 1, 1))


def client(portal, **options) -> SocrataClient:
    settings = {"app_token": APP_TOKEN, "page_size": page_size(2.5), "timeout": (2.0, 1.0), "sleep": Sleeps(),
                "retry": RetryPolicy(attempts=3, base_delay=0.01)}
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
    with pytest.raises(PortalError, match=r"failed 3 times for /(resource|api/v3/views)/ijzp-q8t2[./].*; last: HTTP 503"):
        c.incident_total(*YEAR)
    # without SODA 3, one more request: the 404 on its path that sent the client to 2.1
    assert c.stats.requests == 3 + (portal.protocol == "soda2.1") and c.stats.retries == 2 == len(sleeps)
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
    from local.aws.embedded import free_port

    assert SocrataClient(portal.url).probe(timeout=2)
    assert not SocrataClient(f"http://127.0.0.1:{free_port()}").probe(timeout=1)


# --- SODA 3 first, SODA 2.1 as the fallback -------------------------------------------------


def test_soda3_serves_when_the_portal_has_it_and_2_1_when_it_has_not(portal) -> None:
    c = client(portal)
    rows = [row for page in c.monthly_counts(*YEAR) for row in page]
    assert len(rows) == groups() and c.stats.protocol == portal.protocol
    served = data_requests(portal)
    assert {r["protocol"] for r in served} == {portal.protocol} and all(r["app_token"] for r in served)
    if portal.protocol == "soda3":  # SoQL in the body; paged by page number, as many pages as 2.1 would take
        offsets = list(dict.fromkeys(r["params"]["$offset"] for r in served))  # a page re-asked (its answer lost) once
        assert offsets[:2] == ["0", str(page_size(2.5))]
        assert not [r for r in portal.requests if r["protocol"] == "soda2.1"]
    else:  # one SODA 3 attempt (404), then 2.1 for the rest of the client's life
        tried = [r for r in portal.requests if r["protocol"] == "soda3"]
        assert [r["status"] for r in tried] == [404]


def test_both_protocols_answer_the_same_rows(portal_server) -> None:
    portal_server.state.reset()
    try:
        portal_server.serve_soda3(True)
        soda3 = SocrataClient(portal_server.url, APP_TOKEN, page_size=page_size(2.5))
        soda2 = SocrataClient(portal_server.url, None, page_size=page_size(2.5))  # no token: SODA 2.1 only
        assert [p for p in soda3.monthly_counts(*YEAR)] == [p for p in soda2.monthly_counts(*YEAR)]
        assert (soda3.stats.protocol, soda2.stats.protocol) == ("soda3", "soda2.1")
        assert not [r for r in portal_server.requests if r["protocol"] == "soda3" and not r["app_token"]]
    finally:
        portal_server.state.reset()


def test_the_stand_in_refuses_soda3_without_an_app_token(portal_server) -> None:
    import requests

    url = f"{portal_server.url}/api/v3/views/{CRIMES_DATASET}/query.json"
    query = {"query": "SELECT count(*) AS n", "includeSynthetic": False}
    refused = requests.post(url, json=query, timeout=5)
    assert refused.status_code == 403 and "app token" in refused.json()["message"]
    answered = requests.post(url, json=query, headers={"X-App-Token": APP_TOKEN}, timeout=5)
    assert answered.status_code == 200 and answered.json() == [{"n": str(incidents())}]


class FakeSession:
    """A session whose SODA 3 POST fails as told and whose 2.1 GET answers one row."""

    def __init__(self, post: Exception | int) -> None:
        self.post_outcome, self.calls = post, []

    def _response(self, status: int, body: object) -> object:
        import json
        from types import SimpleNamespace

        return SimpleNamespace(status_code=status, content=json.dumps(body).encode(), headers={},
                               json=lambda: body, text=json.dumps(body))

    def post(self, url: str, **kwargs: object) -> object:
        self.calls.append(("POST", url))
        if isinstance(self.post_outcome, Exception):
            raise self.post_outcome
        return self._response(self.post_outcome, {"message": "nope"})

    def get(self, url: str, **kwargs: object) -> object:
        self.calls.append(("GET", url))
        return self._response(200, [{"n": "7"}])


def _refused_connection() -> Exception:
    import requests

    try:
        raise ConnectionRefusedError(111, "Connection refused")
    except ConnectionRefusedError as cause:
        try:
            raise requests.exceptions.ConnectionError("Max retries exceeded: Connection refused") from cause
        except requests.exceptions.ConnectionError as exc:
            return exc


@pytest.mark.parametrize("outcome", [404, 405, 501, "refused"])
def test_the_client_falls_back_to_2_1_when_soda3_is_unavailable(outcome) -> None:
    session = FakeSession(_refused_connection() if outcome == "refused" else outcome)
    c = SocrataClient("https://portal.example", APP_TOKEN, session=session, sleep=Sleeps(), retry=RetryPolicy(attempts=2))
    assert c.incident_total(*YEAR) == 7 and c.incident_total(*YEAR) == 7
    assert [m for m, _ in session.calls] == ["POST", "GET", "GET"]  # SODA 3 tried once, then 2.1
    assert c.stats.protocol == "soda2.1" and c.stats.retries == 0


@pytest.mark.parametrize("status", [400, 403, 500])
def test_other_soda3_failures_are_not_a_reason_to_fall_back(status) -> None:
    session = FakeSession(status)
    c = SocrataClient("https://portal.example", APP_TOKEN, session=session, sleep=Sleeps(), retry=RetryPolicy(attempts=2))
    with pytest.raises(PortalError):
        c.incident_total(*YEAR)
    assert {m for m, _ in session.calls} == {"POST"}


def test_without_an_app_token_only_soda_2_1_is_asked() -> None:
    session = FakeSession(404)
    assert SocrataClient("https://portal.example", None, session=session).incident_total(*YEAR) == 7
    assert [m for m, _ in session.calls] == ["GET"]


def test_prod_needs_an_app_token(monkeypatch) -> None:
    monkeypatch.delenv("CRIMECAST_SOCRATA_APP_TOKEN", raising=False)
    monkeypatch.delenv("CRIMECAST_SOCRATA_APP_TOKEN_SECRET_ARN", raising=False)
    monkeypatch.setenv("STAGE", "prod")
    with pytest.raises(ConfigurationError, match="prod needs a Socrata app token"):
        settings.read(settings.PortalSettings)
    monkeypatch.setenv("CRIMECAST_SOCRATA_APP_TOKEN_SECRET_ARN", "arn:aws:secretsmanager:us-east-1:1:secret:t")
    assert settings.read(settings.PortalSettings).app_token_secret_arn
    monkeypatch.setenv("STAGE", "dev")
    monkeypatch.delenv("CRIMECAST_SOCRATA_APP_TOKEN_SECRET_ARN")
    assert settings.read(settings.PortalSettings).app_token is None
