"""Client of the City of Chicago's data portal (Socrata's SODA API).

SODA 3 first, SODA 2.1 as the fallback. SODA 3 reads are ``POST /api/v3/views/<id>/query.json``
with the SoQL in a JSON body, ``{"query": "SELECT ... WHERE ... GROUP BY ... ORDER BY ...",
"page": {"pageNumber": n, "pageSize": m}, "includeSynthetic": false}``, and an app token in
``X-App-Token`` (required: SODA 3 refuses anonymous requests); the answer of ``query.json``
is a JSON array of row objects, as SODA 2.1's ``GET /resource/<id>.json`` (``$select``,
``$where``, ``$group``, ``$order``, ``$limit``, ``$offset`` in the query string) gives.
Without an app token the client reads SODA 2.1 only; with one it falls back to 2.1 when the
portal has no SODA 3 (404, 405 or 501 on that path, or the connection refused) until it has
seen SODA 3 answer, and stays on 2.1 for the rest of its life. ``stats.protocol`` says which
one served. The boundaries (GeoJSON) are read through SODA 2.1's ``.geojson`` resource.

Monthly counts per (month, community area, crime type) are aggregated by the portal
itself (``$select ... count(*)``, ``$group``), so a year of history is a few tens of
thousands of rows instead of about 250,000 incidents. Pages come through ``$limit`` and
``$offset`` with ``$order`` always set: without it Socrata's order is undefined, and
paging would skip or repeat rows.

Every request has timeouts and is retried with exponential backoff and jitter on 429,
5xx, connection errors, timeouts and truncated or invalid JSON; ``Retry-After`` is
honoured. One retry loop here rather than urllib3's ``Retry``: urllib3 retries only
what it sees before the body is read (status codes, connection errors), while a body
cut short or a page that is not JSON is found after, and two nested loops would
multiply the attempts and blur the budget. ``requests`` gives the pooled session and
the timeouts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
import email.utils
import json
import random
import time
from typing import Any

from crimecast import settings
from crimecast.domain.errors import CrimecastError

DEFAULT_URL = "https://data.cityofchicago.org"

CRIMES_DATASET = "ijzp-q8t2"  # "Crimes - 2001 to Present"
BOUNDARIES_DATASET = "igwz-8jzy"  # "Boundaries - Community Areas (current)", with names and numbers
MAX_PAGE_SIZE = 50_000  # the most rows Socrata returns per request
SODA3 = "soda3"
SODA2 = "soda2.1"
SODA3_ABSENT = (404, 405, 501)  # what a portal without SODA 3 answers on its path

MONTHLY_SELECT = "date_trunc_ym(date) AS month, community_area, primary_type, count(*) AS n"
MONTHLY_GROUP = "month, community_area, primary_type"
MONTHLY_ORDER = "month, community_area, primary_type"


class PortalError(CrimecastError):
    """The portal could not be read: it refused the query, or kept failing after retries."""

    code = "portal_unavailable"


class PortalDataError(PortalError):
    """The portal answered, but with data that cannot be right (a count that is not a
    number, pages that never add up, months outside those asked for)."""

    code = "portal_bad_data"


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6  # tries per request, the first one included
    base_delay: float = 1.0  # seconds before the first retry; doubles each time
    max_delay: float = 60.0  # cap of one back-off
    max_retry_after: float = 300.0  # a longer Retry-After fails the request instead of stalling the run

    def backoff(self, retry: int, rng: Callable[[], float]) -> float:
        """'Equal jitter': half the exponential delay for sure, the other half at random."""
        cap = min(self.max_delay, self.base_delay * 2 ** (retry - 1))
        return cap / 2 + rng() * cap / 2


@dataclass
class ClientStats:
    requests: int = 0
    retries: int = 0
    pages: int = 0
    rows: int = 0
    waited_s: float = 0.0
    problems: list[str] = field(default_factory=list)  # the last few retried problems, for the run record
    protocol: str | None = None  # SODA3 or SODA2 once a request was answered


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header: a number of seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class Soda3Unavailable(Exception):
    """The portal does not serve SODA 3 (yet): read SODA 2.1 instead."""


def _refused(exc: Exception) -> bool:
    """A connection refused outright (nothing listens for that path), not one cut or timed out."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ConnectionRefusedError) or "Connection refused" in str(current):
            return True
        current = current.__cause__ or current.__context__ or (current.args[0] if current.args and
                                                               isinstance(current.args[0], BaseException) else None)
    return False


def soql(params: dict[str, Any]) -> str:
    """SODA 2.1's ``$`` parameters as one SoQL query (SODA 3's ``query``); paging goes apart."""
    clauses = (("$select", "SELECT"), ("$where", "WHERE"), ("$group", "GROUP BY"), ("$order", "ORDER BY"))
    text = " ".join(f"{keyword} {params[name]}" for name, keyword in clauses if params.get(name))
    return text if params.get("$select") else f"SELECT * {text}".strip()


def _soql_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000")


def app_token_from_env() -> str | None:
    """The app token, from the environment or from Secrets Manager (raises the throttling limits)."""
    config = settings.load(settings.PortalSettings)
    if config.app_token:
        return config.app_token
    arn = config.app_token_secret_arn
    if arn:
        from crimecast.adapters.secrets import get_secret

        return get_secret(arn, max_age=3600).strip() or None
    return None


class SocrataClient:
    """Reads the crimes dataset and the community area boundaries from a Socrata portal."""

    def __init__(self, base_url: str | None = None, app_token: str | None = None, *,
                 timeout: tuple[float, float] = (10.0, 120.0), retry: RetryPolicy | None = None,
                 page_size: int = MAX_PAGE_SIZE, session: Any = None, sleep: Callable[[float], None] = time.sleep,
                 rng: Callable[[], float] = random.random, log: Callable[[str], None] | None = None) -> None:
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be 1..{MAX_PAGE_SIZE}")
        self.base_url = (base_url or settings.load(settings.PortalSettings).url or DEFAULT_URL).rstrip("/")
        self.app_token = app_token
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.page_size = page_size
        self._session = session
        self._sleep = sleep
        self._rng = rng
        self.log = log or (lambda message: None)
        self.stats = ClientStats()
        # SODA 3 needs an app token: without one there is only SODA 2.1. None: not known yet.
        self.protocol: str | None = None if app_token else SODA2
        self._soda3_seen = False

    @classmethod
    def from_env(cls, base_url: str | None = None, **kwargs: Any) -> SocrataClient:
        """A client for ``base_url``, else ``CRIMECAST_SOCRATA_URL``, else the city's portal."""
        return cls(base_url, app_token_from_env(), **kwargs)

    @property
    def session(self) -> Any:
        if self._session is None:
            import requests

            self._session = requests.Session()
            self._session.headers.update({"Accept": "application/json", "User-Agent": "crimecast-ingest/1"})
            if self.app_token:
                self._session.headers["X-App-Token"] = self.app_token
        return self._session

    # --- one request, retried ---------------------------------------------------------

    def get_json(self, path: str, params: dict[str, Any] | None = None,
                 expect: type | tuple[type, ...] = (list, dict)) -> Any:
        """GET a JSON document; retries what can pass, raises PortalError on what cannot."""
        return self._request("GET", path, params=params, expect=expect)

    def post_json(self, path: str, body: dict[str, Any], expect: type | tuple[type, ...] = (list, dict),
                  soda3: bool = False) -> Any:
        """POST a JSON body for a JSON document (SODA 3), retried as ``get_json``. With ``soda3``
        and SODA 3 not yet seen answering, Soda3Unavailable when the portal has none."""
        return self._request("POST", path, body=body, expect=expect, soda3=soda3 and not self._soda3_seen)

    def _request(self, method: str, path: str, *, params: dict[str, Any] | None = None, body: Any = None,
                 expect: type | tuple[type, ...] = (list, dict), soda3: bool = False) -> Any:
        import requests

        url = f"{self.base_url}{path}"
        policy = self.retry
        for attempt in range(1, policy.attempts + 1):
            self.stats.requests += 1
            wait: float | None = None
            try:
                if method == "POST":
                    response = self.session.post(url, json=body, timeout=self.timeout)
                else:
                    response = self.session.get(url, params=params, timeout=self.timeout)
                status = response.status_code
                if soda3 and status in SODA3_ABSENT:
                    raise Soda3Unavailable(f"HTTP {status}")
                if status == 200:
                    document = json.loads(response.content)
                    if isinstance(document, expect):
                        return document
                    problem = f"unexpected JSON {type(document).__name__} from {path}"
                elif status == 429 or status >= 500:
                    problem = f"HTTP {status}"
                    wait = _retry_after(response.headers.get("Retry-After"))
                else:
                    raise PortalError(f"the portal refused {path} (HTTP {status}): {self._message(response)}")
            except (PortalError, Soda3Unavailable):
                raise
            except requests.exceptions.Timeout as exc:
                problem = f"timeout ({type(exc).__name__})"
            except (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError,
                    requests.exceptions.ContentDecodingError) as exc:
                if soda3 and _refused(exc):
                    raise Soda3Unavailable(f"connection refused ({type(exc).__name__})") from None
                problem = f"connection failed or body cut short ({type(exc).__name__}: {str(exc)[:160]})"
            except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError: a truncated or garbled body
                problem = f"invalid JSON ({str(exc)[:120]})"
            except requests.exceptions.RequestException as exc:  # a bad URL and the like: retrying cannot help
                raise PortalError(f"cannot reach the portal at {self.base_url}: {exc}") from None
            if attempt == policy.attempts:
                raise PortalError(f"the portal at {self.base_url} failed {attempt} times for {path}; last: {problem}")
            if wait is not None and wait > policy.max_retry_after:
                raise PortalError(f"the portal asked to wait {wait:.0f} s (Retry-After) for {path}: "
                                  f"more than {policy.max_retry_after:.0f} s, giving up")
            delay = wait + min(1.0, 0.1 * wait) * self._rng() if wait is not None else policy.backoff(attempt, self._rng)
            self.stats.retries += 1
            self.stats.waited_s += delay
            self.stats.problems = [*self.stats.problems[-4:], problem]
            self.log(f"retry {attempt}/{policy.attempts - 1} in {delay:.1f} s: {problem}")
            self._sleep(delay)
        raise AssertionError("unreachable")

    @staticmethod
    def _message(response: Any) -> str:
        try:
            body = response.json()
            return str(body.get("message") or body)[:300] if isinstance(body, dict) else str(body)[:300]
        except ValueError:
            return response.text[:300]

    # --- one query, SODA 3 first ----------------------------------------------------

    def query(self, dataset: str, params: dict[str, Any], page: tuple[int, int] | None = None) -> list[dict[str, Any]]:
        """The rows of one SoQL query (``params`` as SODA 2.1's ``$`` parameters, without
        ``$limit``/``$offset``); ``page``: (page number from 1, page size)."""
        if self.protocol != SODA2:
            body: dict[str, Any] = {"query": soql(params), "includeSynthetic": False}
            if page:
                body["page"] = {"pageNumber": page[0], "pageSize": page[1]}
            try:
                rows = self.post_json(f"/api/v3/views/{dataset}/query.json", body, expect=list, soda3=True)
            except Soda3Unavailable as exc:
                self.protocol = SODA2
                self.log(f"the portal has no SODA 3 ({exc}): reading SODA 2.1")
            else:
                self.protocol = self.stats.protocol = SODA3
                self._soda3_seen = True
                return rows
        paging = {"$limit": page[1], "$offset": (page[0] - 1) * page[1]} if page else {}
        rows = self.get_json(f"/resource/{dataset}.json", {**params, **paging}, expect=list)
        self.stats.protocol = SODA2
        return rows

    # --- paging --------------------------------------------------------------------

    def pages(self, dataset: str, params: dict[str, Any]) -> Iterator[list[dict[str, Any]]]:
        """Every page of a query, paged by the portal; ``params`` must set ``$order``."""
        if not params.get("$order"):
            raise ValueError("paging needs $order: Socrata's row order is undefined without it")
        number = 1
        while True:
            page = self.query(dataset, params, (number, self.page_size))
            self.stats.pages += 1
            self.stats.rows += len(page)
            yield page
            if len(page) < self.page_size:
                return
            number += 1

    # --- the queries the ingest makes ------------------------------------------------

    @staticmethod
    def _between(start: datetime, end: datetime) -> str:
        return f"date >= '{_soql_time(start)}' AND date < '{_soql_time(end)}'"

    def monthly_counts(self, start: datetime, end: datetime) -> Iterator[list[dict[str, Any]]]:
        """Pages of {month, community_area?, primary_type, n} for incidents dated in [start, end)."""
        return self.pages(CRIMES_DATASET, {"$select": MONTHLY_SELECT, "$where": self._between(start, end),
                                           "$group": MONTHLY_GROUP, "$order": MONTHLY_ORDER})

    def incident_total(self, start: datetime, end: datetime) -> int:
        """How many incidents are dated in [start, end): the check that the pages added up."""
        rows = self.query(CRIMES_DATASET, {"$select": "count(*) AS n", "$where": self._between(start, end)})
        try:
            return int(rows[0]["n"]) if rows else 0
        except (KeyError, TypeError, ValueError):
            raise PortalDataError(f"the portal's count is not a number: {str(rows)[:200]}") from None

    def boundaries(self) -> dict[str, Any]:
        """The community areas' GeoJSON FeatureCollection."""
        document = self.get_json(f"/resource/{BOUNDARIES_DATASET}.geojson", {"$limit": 1000}, expect=dict)
        if document.get("type") != "FeatureCollection" or not isinstance(document.get("features"), list):
            raise PortalDataError("the boundaries dataset did not return a GeoJSON FeatureCollection")
        return document

    def probe(self, timeout: float = 3.0) -> bool:
        """Does the portal answer a one-row query quickly, in SODA 3 (with an app token) or
        2.1? (No retries: for choosing a source.)"""
        attempts = [("GET", f"/resource/{CRIMES_DATASET}.json", {"params": {"$limit": 1, "$order": ":id"}})]
        if self.app_token:
            attempts.insert(0, ("POST", f"/api/v3/views/{CRIMES_DATASET}/query.json",
                                {"json": {"query": "SELECT id ORDER BY :id", "page": {"pageNumber": 1, "pageSize": 1},
                                          "includeSynthetic": False}}))
        for method, path, options in attempts:
            try:
                response = self.session.request(method, f"{self.base_url}{path}", timeout=timeout, **options)
                if response.status_code == 200 and isinstance(response.json(), list):
                    return True
            except Exception:  # noqa: BLE001 - any failure means "no"
                continue
        return False
