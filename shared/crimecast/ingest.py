"""Ingestion: the city's crime records become monthly counts in S3, a new version per run.

Sources: the data portal (monthly counts aggregated by the portal, see
:mod:`crimecast.socrata`) or a file (a portal CSV export or tidy counts, for offline
use). Both go through the same path:

* **backfill**: 2001 to the current month, a year per query; the result replaces every
  stored month.
* **incremental** (the daily run): the trailing window (13 months by default) is pulled
  again and replaces those months as a whole, so records revised since (reclassified,
  re-dated) are counted where they now belong, and nothing is counted twice. Where the
  stored counts end before the window, the window starts there instead: no gap.

The current month is stored and marked partial (so is the previous one while the
portal's 7-day lag still hides its last days); training and scoring leave it out.

Storage layout in ``DATA_BUCKET``::

    counts/current.json                        the pointer: manifest of the serving version
    counts/versions/<v>/monthly_counts.csv.gz  every month and level, one object: what training reads
    counts/versions/<v>/parts/<year>.csv.gz    the same rows a year per object (no header)
    counts/versions/<v>/manifest.json          months, rows, partial month, source, parts
    counts/staging/<run_id>/<chunk>.csv.gz     fetched chunks of an unfinished run: its checkpoint
    boundaries/community_areas.geojson         the community areas, for the map

A version is written completely, then the pointer flips in one PUT: a run that fails at
any point leaves the serving counts as they were. One ingest runs at a time: a run holds
a lease (an item in the runs table, renewed as it goes); a second run is refused with
ConflictError (409) until the first ends or its lease lapses. Progress is checkpointed
per chunk in the run record, so a run that crashed, failed or ran out of Lambda time
resumes where it stopped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
import gzip
import io
import json
import logging
import os
from pathlib import Path
import threading
import time
from typing import TYPE_CHECKING, Any
import uuid

from . import runs
from .errors import ConfigurationError, ConflictError, CrimecastError, InvalidInputError
from .socrata import MAX_PAGE_SIZE, PortalError, SocrataClient
from .storage import Storage

if TYPE_CHECKING:  # pandas is imported where it is used: lifecycle imports this module
    import pandas as pd

logger = logging.getLogger(__name__)

COUNTS_KEY = "counts/current.json"  # the pointer to the serving counts version; training reads through it
VERSIONS_PREFIX = "counts/versions/"
STAGING_PREFIX = "counts/staging/"
COUNTS_FILE = "monthly_counts.csv.gz"
KEEP_VERSIONS = 5  # older versions are deleted after a publish (the bucket's versioning keeps them 30 days more)

MODES = ("incremental", "backfill")
DEFAULT_WINDOW_MONTHS = 13
MIN_WINDOW_MONTHS = 2  # during the portal's 7-day lag the previous month is still being completed
MAX_WINDOW_MONTHS = 480
FIRST_YEAR = 2001  # the dataset starts in 2001
PORTAL_LAG_DAYS = 7  # the portal withholds the most recent seven days

LEASE_NAME = "lease#ingest"
LEASE_SECONDS = 16 * 60  # longer than a Lambda invocation can live; renewed after every chunk
CHUNK_READS = 3  # a chunk whose pages do not add up to the portal's count is read again, this often
DEADLINE_MARGIN_S = 120.0  # a Lambda worker hands over to a new invocation with this much time left

INLINE_ENV = "CRIMECAST_INLINE_INGEST"  # "1": the worker is a thread of this process (local stack, tests)
PAGE_SIZE_ENV = "CRIMECAST_SOCRATA_PAGE_SIZE"
WORKER_EVENT_KEY = "crimecast_ingest_worker"

PART_COLUMNS = ["month", "community_area", "primary_type", "count"]
HEADER = (",".join(PART_COLUMNS) + "\n").encode()

Progress = Callable[[str], None]


def _quiet(message: str) -> None:
    logger.info(message)


# --- what a run covers -------------------------------------------------------------------


@dataclass(frozen=True)
class Chunk:
    """Months ``first``..``last`` (YYYY-MM, inclusive) of one calendar year: one query."""

    first: str
    last: str

    @property
    def label(self) -> str:
        return f"{self.first}..{self.last}"

    @property
    def year(self) -> int:
        return int(self.first[:4])

    def bounds(self) -> tuple[datetime, datetime]:
        start = datetime(int(self.first[:4]), int(self.first[5:7]), 1)
        year, month = int(self.last[:4]), int(self.last[5:7])
        end = datetime(year + month // 12, month % 12 + 1, 1)
        return start, end

    @classmethod
    def parse(cls, label: str) -> Chunk:
        first, last = label.split("..")
        return cls(first, last)


def plan_chunks(first: str, last: str) -> list[Chunk]:
    """Months ``first``..``last`` split at year ends."""
    if last < first:
        return []
    chunks = []
    for year in range(int(first[:4]), int(last[:4]) + 1):
        chunks.append(Chunk(max(first, f"{year}-01"), min(last, f"{year}-12")))
    return chunks


def _month(moment: date) -> str:
    return f"{moment.year:04d}-{moment.month:02d}"


def _add_months(month: str, n: int) -> str:
    index = int(month[:4]) * 12 + int(month[5:7]) - 1 + n
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


# --- sources -----------------------------------------------------------------------------


class PortalSource:
    """Monthly aggregates from the data portal, checked against the portal's own count."""

    def __init__(self, client: SocrataClient, as_of: date) -> None:
        self.client = client
        self.as_of = as_of

    def describe(self) -> str:
        return self.client.base_url

    def window(self, mode: str, window_months: int, stored_last: str | None, first_year: int) -> tuple[str, str]:
        end = _month(self.as_of)
        if mode == "backfill":
            return f"{first_year}-01", end
        start = _add_months(end, -(window_months - 1))
        if stored_last is not None and stored_last < start:
            start = stored_last  # the last ingest was long ago: fill the months since
        return start, end

    def retries(self) -> int:
        return self.client.stats.retries

    def fetch(self, chunk: Chunk, progress: Progress) -> tuple[pd.DataFrame, dict[str, int]]:
        """Every level of the chunk's months. The pages must add up to the portal's count of
        incidents over the same dates; if the data changed while paging, read again."""
        import pandas as pd

        from .series import levels_from_aggregates

        start, end = chunk.bounds()
        pages = rows = 0
        for attempt in range(1, CHUNK_READS + 1):
            frames, incidents = [], 0
            for page in self.client.monthly_counts(start, end):
                pages += 1
                rows += len(page)
                if page:  # each page becomes a compact frame at once; the JSON rows are dropped
                    frame = pd.DataFrame.from_records(page, columns=["month", "community_area", "primary_type", "n"])
                    numbers = pd.to_numeric(frame["n"], errors="coerce")
                    if numbers.isna().any():
                        raise PortalError(f"{chunk.label}: the portal returned a row without a count: {page[0]}")
                    incidents += int(numbers.sum())
                    frames.append(frame)
            expected = self.client.incident_total(start, end)
            if expected == incidents:
                break
            progress(f"{chunk.label}: the pages add up to {incidents:,} incidents but the portal counts {expected:,}: "
                     f"the data changed while paging, reading again ({attempt}/{CHUNK_READS})")
        else:
            raise PortalError(f"{chunk.label}: the pages never added up to the portal's count after {CHUNK_READS} reads")
        cells = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["month", "community_area", "primary_type", "n"])
        levels = levels_from_aggregates(cells.rename(columns={"n": "count"}))
        months = levels["month"].astype(str)
        outside = months[(months < chunk.first) | (months > chunk.last)]
        if not outside.empty:
            raise PortalError(f"{chunk.label}: the portal returned month {outside.iloc[0]}, outside the dates asked for")
        return levels, {"pages": pages, "rows": rows, "incidents": incidents}

    def partial_month(self, last_month: str) -> str | None:
        """The last month is partial while it is not over, or not yet past the portal's lag."""
        cut = _month(self.as_of - timedelta(days=PORTAL_LAG_DAYS))
        return last_month if last_month >= cut else None

    def boundaries(self) -> dict[str, Any] | None:
        return self.client.boundaries()


class FileSource:
    """A portal CSV export or a tidy counts file: the months it covers, all its levels."""

    def __init__(self, path: str | Path) -> None:
        from .series import read_counts

        self.path = Path(path)
        self.counts = read_counts(self.path)

    def describe(self) -> str:
        return f"file:{self.path.name}"

    def window(self, mode: str, window_months: int, stored_last: str | None, first_year: int) -> tuple[str, str]:
        return str(self.counts.first_month), str(self.counts.last_month)

    def retries(self) -> int:
        return 0

    def fetch(self, chunk: Chunk, progress: Progress) -> tuple[pd.DataFrame, dict[str, int]]:
        frame = self.counts.frame
        months = frame["month"].astype(str)
        rows = frame[(months >= chunk.first) & (months <= chunk.last)]
        city_all = rows[rows["community_area"].isna() & (rows["primary_type"] == "ALL")]
        return rows, {"pages": 0, "rows": len(rows), "incidents": int(city_all["count"].sum())}

    def partial_month(self, last_month: str) -> str | None:
        partial = self.counts.partial_month
        return last_month if partial is not None and str(partial) == last_month else None

    def boundaries(self) -> dict[str, Any] | None:
        return None


Source = PortalSource | FileSource


# --- parts: a year of rows, gzipped CSV without header ------------------------------------


def _part_bytes(frame: pd.DataFrame) -> bytes:
    text = frame[PART_COLUMNS].assign(month=frame["month"].astype(str)).to_csv(index=False, header=False)
    return gzip.compress(text.encode(), compresslevel=6, mtime=0)


def _read_part(storage: Storage, key: str) -> pd.DataFrame:
    import pandas as pd

    body = storage.get_bytes(key)
    if body is None:
        raise ConfigurationError(f"s3 object {key} is missing: the stored counts are damaged")
    return pd.read_csv(io.BytesIO(body), compression="gzip", header=None, names=PART_COLUMNS, dtype=str, keep_default_na=False)


def _staging_key(run_id: str, chunk: Chunk) -> str:
    return f"{STAGING_PREFIX}{run_id}/{chunk.label}.csv.gz"


def _new_version() -> str:
    return f"v{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"


# --- reading and writing the serving counts -------------------------------------------------


def current_manifest(storage: Storage) -> dict[str, Any] | None:
    """The serving version's manifest (the pointer), or None before the first ingest."""
    return storage.get_json(COUNTS_KEY)


def load_counts(storage: Storage) -> Any:
    """The serving monthly counts (MonthlyCounts), partial month flagged."""
    import pandas as pd

    from .series import counts_from_frame

    pointer = current_manifest(storage)
    if pointer is None:
        raise InvalidInputError(f"no monthly counts in the bucket yet ({COUNTS_KEY}): run an ingest first")
    body = storage.get_bytes(pointer["counts_key"])
    if body is None:
        raise ConfigurationError(f"counts version {pointer['version']} is missing its file {pointer['counts_key']}")
    tidy = pd.read_csv(io.BytesIO(body), compression="gzip", dtype=str, keep_default_na=False)
    tidy["partial_month"] = tidy["month"] == (pointer.get("partial_month") or "")
    return counts_from_frame(tidy)


def store_counts(storage: Storage, counts: Any) -> None:
    """Replace the stored counts with ``counts`` (MonthlyCounts) as a new version."""
    version = _new_version()
    frame = counts.frame
    months = frame["month"].astype(str)
    staged: dict[int, list[str]] = {}
    for year in sorted({int(m[:4]) for m in months.unique()}):
        key = f"{STAGING_PREFIX}{version}/{year}.csv.gz"
        storage.put_bytes(key, _part_bytes(frame[months.str.startswith(f"{year}-")]), "application/gzip")
        staged[year] = [key]
    partial = None if counts.partial_month is None else str(counts.partial_month)
    _publish(storage, version, staged, None, lambda last: partial if partial == last else None,
             {"source": "store_counts", "mode": "backfill"})
    storage.delete_keys(storage.list_keys(f"{STAGING_PREFIX}{version}/"))


def _changes(old: pd.DataFrame, new: pd.DataFrame) -> dict[str, int]:
    """Cells (month, area, type at every level) whose count differs, and the city totals."""
    keys = ["month", "community_area", "primary_type"]
    merged = old.merge(new, on=keys, how="outer", suffixes=("_old", "_new"))
    changed = int((merged["count_old"].fillna("0").astype(int) != merged["count_new"].fillna("0").astype(int)).sum())

    def city_total(frame: pd.DataFrame) -> int:
        rows = frame[(frame["community_area"] == "") & (frame["primary_type"] == "ALL")]
        return int(rows["count"].astype(int).sum())

    return {"cells_changed": changed, "incidents_before": city_total(old), "incidents_after": city_total(new)}


def _publish(storage: Storage, version: str, staged: dict[int, list[str]], window: tuple[str, str] | None,
             partial_of: Callable[[str], str | None], meta: dict[str, Any]) -> dict[str, Any]:
    """Write version ``version`` and point the service at it.

    ``staged``: per year, the keys of rows fetched for the months of ``window`` (None: a
    backfill, which replaces every stored month). Old rows of the window's months are
    dropped even where the new data has none (no incident is a zero, not a gap); other
    years are copied from the serving version.
    """
    import pandas as pd

    pointer = current_manifest(storage)
    old_parts = {} if window is None or pointer is None else {int(y): p for y, p in pointer["parts"].items()}
    prefix = f"{VERSIONS_PREFIX}{version}/"
    parts: dict[int, dict[str, Any]] = {}
    changes = {"cells_changed": 0, "incidents_before": 0, "incidents_after": 0}
    for year in sorted(set(old_parts) | set(staged)):
        key = f"{prefix}parts/{year}.csv.gz"
        old = old_parts.get(year)
        if year not in staged:
            storage.copy(old["key"], key)
            parts[year] = {**old, "key": key}
            continue
        new = pd.concat([_read_part(storage, k) for k in staged[year]], ignore_index=True)
        if old is not None:
            kept = _read_part(storage, old["key"])
            inside = (kept["month"] >= window[0]) & (kept["month"] <= window[1])
            for name, value in _changes(kept[inside], new).items():
                changes[name] += value
            new = pd.concat([kept[~inside], new], ignore_index=True)
        elif window is not None:
            changes["incidents_after"] += _changes(new.iloc[:0], new)["incidents_after"]
        if new.empty:
            continue
        new = new.sort_values(["month", "community_area", "primary_type"], kind="stable")
        body = _part_bytes(new)
        storage.put_bytes(key, body, "application/gzip")
        parts[year] = {"key": key, "rows": len(new), "first_month": new["month"].iloc[0], "last_month": new["month"].iloc[-1],
                       "bytes": len(body)}
    if window is not None and pointer is not None and changes["incidents_after"] == 0 and changes["incidents_before"] > 0:
        raise InvalidInputError(f"the source has no citywide incident in {window[0]}..{window[1]}, where the stored counts "
                                f"have {changes['incidents_before']:,}: refusing to erase them (the stored counts are unchanged)")
    if not parts:
        raise InvalidInputError("the source holds no incident at all: nothing to publish (the stored counts are unchanged)")
    last_month = max(p["last_month"] for p in parts.values())
    if window is None or window[0] <= last_month <= window[1]:
        partial = partial_of(last_month)
    else:  # the last month was not replaced: it stays as it was
        partial = pointer.get("partial_month") if pointer and pointer.get("partial_month") == last_month else None
    bodies = [gzip.compress(HEADER, mtime=0)]
    for year in sorted(parts):
        body = storage.get_bytes(parts[year]["key"])
        if body is None:
            raise ConfigurationError(f"s3 object {parts[year]['key']} vanished while publishing")
        bodies.append(body)
    counts_key = f"{prefix}{COUNTS_FILE}"
    combined = b"".join(bodies)
    storage.put_bytes(counts_key, combined, "application/gzip")
    manifest = {
        "version": version, "created_at": runs.now_iso(), "counts_key": counts_key, "bytes": len(combined),
        "first_month": min(p["first_month"] for p in parts.values()), "last_month": last_month, "partial_month": partial,
        "rows": sum(p["rows"] for p in parts.values()), "window": list(window) if window else None,
        "previous_version": pointer["version"] if pointer else None, **meta,
        "changes": changes if window is not None and pointer is not None else None,
        "parts": {str(year): parts[year] for year in sorted(parts)},
    }
    storage.put_json(f"{prefix}manifest.json", manifest)
    storage.put_json(COUNTS_KEY, manifest)  # the flip: one PUT
    return manifest


def _drop_old_versions(storage: Storage, keep: int | None = None) -> int:
    """Delete all but the newest ``keep`` versions (never the serving one). Best effort."""
    keep = keep or KEEP_VERSIONS
    try:
        serving = (current_manifest(storage) or {}).get("version")
        by_version: dict[str, list[str]] = {}
        for key in storage.list_keys(VERSIONS_PREFIX):
            by_version.setdefault(key[len(VERSIONS_PREFIX):].split("/", 1)[0], []).append(key)
        old = [v for v in sorted(by_version)[:-keep] if v != serving]
        storage.delete_keys(k for v in old for k in by_version[v])
        return len(old)
    except Exception:  # noqa: BLE001 - housekeeping must not fail a published run
        logger.exception("could not delete old counts versions")
        return 0


# --- boundaries --------------------------------------------------------------------------


def normalise_boundaries(document: dict[str, Any]) -> dict[str, Any]:
    """The 77 community areas, each once, as ``{area_number, name}`` features (official names)."""
    from .areas import AREAS, find_area

    features = []
    for feature in document.get("features") or []:
        properties = feature.get("properties") or {}
        number = next((properties[k] for k in ("area_number", "area_numbe", "area_num_1") if properties.get(k) not in (None, "")),
                      None)
        if number is None or not feature.get("geometry"):
            raise InvalidInputError(f"a boundary feature lacks an area number or a geometry: {str(properties)[:120]}")
        area = find_area(number)
        features.append({"type": "Feature", "properties": {"area_number": area.number, "name": area.name},
                         "geometry": feature["geometry"]})
    numbers = sorted(f["properties"]["area_number"] for f in features)
    if numbers != [a.number for a in AREAS]:
        raise InvalidInputError(f"the boundaries hold {len(numbers)} features, not the {len(AREAS)} areas once each")
    return {"type": "FeatureCollection", "features": sorted(features, key=lambda f: f["properties"]["area_number"])}


def _store_boundaries(storage: Storage, source: Source, mode: str) -> str:
    from .forecasts import BOUNDARIES_KEY

    if mode != "backfill" and storage.list_keys(BOUNDARIES_KEY):
        return "kept (already stored)"
    try:
        document = source.boundaries()
        if document is None:
            return "not fetched (file source)"
        body = json.dumps(normalise_boundaries(document), separators=(",", ":")).encode()
    except CrimecastError as exc:  # the map can wait for the next run; the counts should not
        return f"not stored: {exc}"
    storage.put_bytes(BOUNDARIES_KEY, body, "application/geo+json")
    return "stored (77 areas)"


# --- one run at a time --------------------------------------------------------------------


class Lease:
    """The ingest lease, held in the name of one run."""

    def __init__(self, storage: Storage, run_id: str) -> None:
        self.storage = storage
        self.run_id = run_id

    def take(self) -> None:
        """Take or renew the lease; ConflictError while another live run holds it."""
        now = int(time.time())
        blocker = self.storage.take_lease(LEASE_NAME, self.run_id, now + LEASE_SECONDS, now)
        if blocker is None:
            return
        holder = str(blocker.get("holder"))
        other = self.storage.get_run(holder)
        if other is None or other.get("status") in ("succeeded", "failed"):  # ended without letting go
            if self.storage.take_lease(LEASE_NAME, self.run_id, now + LEASE_SECONDS, now, steal_from=holder) is None:
                return
        until = datetime.fromtimestamp(int(blocker.get("lease_until", now)), UTC).strftime("%H:%M:%SZ")
        raise ConflictError(f"ingest run {holder} is in progress (lease until {until}): follow it at GET /runs/{holder}")

    def release(self) -> None:
        self.storage.release_lease(LEASE_NAME, self.run_id)


def _abandon_stale(storage: Storage, lease: dict[str, Any] | None, taker: str) -> None:
    """A run whose lease lapsed while it was queued or running has died: say so on its record."""
    holder = (lease or {}).get("holder")
    if not holder or holder == taker:
        return
    item = storage.get_run(str(holder))
    if item and item.get("status") in ("queued", "running"):
        runs.update_run(storage, str(holder), "failed", {
            "error": f"abandoned: its worker stopped without finishing (lease lapsed); run {taker} took over; "
                     "its fetched chunks are kept for a resume"})


# --- starting runs -------------------------------------------------------------------------


def check_options(mode: str, window_months: int) -> None:
    if mode not in MODES:
        raise InvalidInputError(f"unknown ingest mode {mode!r}", MODES)
    if not MIN_WINDOW_MONTHS <= window_months <= MAX_WINDOW_MONTHS:
        raise InvalidInputError(f"window_months must be {MIN_WINDOW_MONTHS}..{MAX_WINDOW_MONTHS} (the previous month "
                                f"is still being completed during the portal's {PORTAL_LAG_DAYS}-day lag)")


def start(storage: Storage, trigger: str, *, mode: str = "incremental", window_months: int = DEFAULT_WINDOW_MONTHS,
          as_of: date | None = None, source_label: str | None = None, first_year: int = FIRST_YEAR) -> dict[str, Any]:
    """Record a queued ingest run holding the lease; ConflictError while another one runs.
    ``source_label``: the portal's base URL (default: CRIMECAST_SOCRATA_URL, else the city's) or ``file:<name>``."""
    check_options(mode, window_months)
    run_id = runs.new_run_id("ingest")
    before = storage.get_run(LEASE_NAME)
    lease = Lease(storage, run_id)
    lease.take()
    try:
        _abandon_stale(storage, before, run_id)
        detail = {"trigger": trigger, "mode": mode, "window_months": window_months,
                  "as_of": (as_of or datetime.now(UTC).date()).isoformat(), "first_year": first_year,
                  "source": source_label or SocrataClient(None).base_url}
        return runs.start_run(storage, "ingest", detail, run_id=run_id)
    except BaseException:
        lease.release()
        raise


def worker_event(run_id: str, leg: int = 0) -> dict[str, Any]:
    return {WORKER_EVENT_KEY: {"run_id": run_id, "leg": leg}}


_inline_workers: list[threading.Thread] = []


def dispatch(storage: Storage, run_id: str, function_name: str | None = None, leg: int = 0) -> None:
    """Start the worker of a queued run: an asynchronous invocation of the ingest Lambda,
    or, with CRIMECAST_INLINE_INGEST=1 (local stack, tests), a thread of this process."""
    if os.environ.get(INLINE_ENV) == "1":
        thread = threading.Thread(target=execute, args=(storage, run_id), name=f"ingest-{run_id}", daemon=True)
        _inline_workers.append(thread)
        thread.start()
        return
    name = function_name or os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
    if not name:
        raise ConfigurationError(f"no ingest worker: outside Lambda set {INLINE_ENV}=1 to run ingests in this process")
    storage.invoke_async(name, worker_event(run_id, leg))


def wait_for_inline_workers(timeout: float = 120.0) -> bool:
    """Join the inline workers started so far (tests, local stack shutdown); False on timeout."""
    deadline = time.monotonic() + timeout
    for thread in list(_inline_workers):
        thread.join(max(0.0, deadline - time.monotonic()))
    _inline_workers[:] = [t for t in _inline_workers if t.is_alive()]
    return not _inline_workers


def request(storage: Storage, trigger: str, function_name: str | None = None, **options: Any) -> dict[str, Any]:
    """Start a run and its worker; the run's queued view (the API answers 202 with it)."""
    run = start(storage, trigger, **options)
    try:
        dispatch(storage, run["run_id"], function_name)
    except Exception as exc:
        Lease(storage, run["run_id"]).release()
        runs.update_run(storage, run["run_id"], "failed", {"error": f"could not start the ingest worker: {exc}"})
        raise
    return run


# --- doing the work -------------------------------------------------------------------------


class _Deferred(Exception):
    """Out of time in this invocation: a new one carries on from the checkpoint."""


def _describe(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, CrimecastError) else f"{type(exc).__name__}: {exc}"


def _duration(run: dict[str, Any]) -> float:
    started = datetime.strptime(run["started_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    return round((datetime.now(UTC) - started).total_seconds(), 1)


def _portal_source(detail: dict[str, Any], progress: Progress, page_size: int | None = None) -> PortalSource:
    source = str(detail.get("source", ""))
    if source.startswith("file:"):
        raise InvalidInputError(f"run imports {source[5:]}: resume it with --from-file and that file")
    page_size = page_size or int(os.environ.get(PAGE_SIZE_ENV) or MAX_PAGE_SIZE)
    return PortalSource(SocrataClient.from_env(source or None, page_size=page_size, log=progress),
                        date.fromisoformat(detail["as_of"]))


def execute(storage: Storage, run_id: str, source: Source | None = None, *, progress: Progress = _quiet,
            deadline: Callable[[], float] | None = None, resume: bool = False, page_size: int | None = None) -> dict[str, Any]:
    """Carry out (or carry on) ingest run ``run_id``; returns its view.

    The run ends ``succeeded`` or ``failed`` (its error recorded, the serving counts
    untouched, fetched chunks kept for a resume), or stays ``running`` when ``deadline``
    (seconds left) ran short: the caller starts a new invocation. A failed run is taken
    up again only with ``resume``.
    """
    run = runs.get_run(storage, run_id)
    if run["kind"] != "ingest":
        raise InvalidInputError(f"run {run_id} is a {run['kind']} run, not an ingest")
    if run["status"] == "succeeded" or (run["status"] == "failed" and not resume):
        return run
    lease = Lease(storage, run_id)
    lease.take()
    try:
        source = source or _portal_source(run["detail"], progress, page_size)
        if isinstance(source, PortalSource):  # back-offs can be long: each one renews the lease
            log = source.client.log
            source.client.log = lambda message: (log(message), lease.take())
        return _work(storage, run, source, progress, deadline, lease)
    except _Deferred:
        view = runs.update_run(storage, run_id, "running", {"phase": "continuing in a new invocation"})
        progress("out of time in this invocation: a new one carries on from the checkpoint")
        return view
    except Exception as exc:
        error = _describe(exc)
        logger.warning("ingest run %s failed: %s", run_id, error, exc_info=not isinstance(exc, CrimecastError))
        progress(f"failed: {error}")
        view = runs.update_run(storage, run_id, "failed", {"error": error, "phase": "failed", "duration_s": _duration(run)})
        lease.release()
        return view


def _work(storage: Storage, run: dict[str, Any], source: Source, progress: Progress,
          deadline: Callable[[], float] | None, lease: Lease) -> dict[str, Any]:
    run_id, detail = run["run_id"], run["detail"]
    if "chunks" not in detail:  # first leg: fix the plan, so a resume covers the same months
        pointer = current_manifest(storage)
        mode = detail["mode"]
        note = {}
        if mode == "incremental" and pointer is None:
            mode, note = "backfill", {"note": "no counts stored yet: a full backfill instead of an incremental run"}
        first, last = source.window(mode, int(detail["window_months"]), pointer["last_month"] if pointer else None,
                                    int(detail.get("first_year", FIRST_YEAR)))
        chunks = plan_chunks(first, last)
        detail = runs.update_run(storage, run_id, "running", {
            **note, "mode": mode, "source": source.describe(), "window": {"from": first, "to": last},
            "chunks": [c.label for c in chunks], "chunks_done": [], "pages": 0, "rows": 0, "incidents": 0, "retries": 0,
            "phase": "fetching", "base_version": pointer["version"] if pointer else None,
        })["detail"]
        progress(f"{run_id}: {mode} {first}..{last} from {source.describe()} ({len(chunks)} queries)")
    else:
        detail = runs.update_run(storage, run_id, "running", {"phase": "fetching", "legs": int(detail.get("legs", 1)) + 1,
                                                              "error": None})["detail"]
        progress(f"{run_id}: carrying on, {len(detail['chunks_done'])} of {len(detail['chunks'])} queries done")
    chunks = [Chunk.parse(label) for label in detail["chunks"]]
    done = set(detail["chunks_done"])
    for index, chunk in enumerate(chunks, 1):
        if chunk.label in done:
            continue
        if deadline is not None and deadline() < DEADLINE_MARGIN_S:
            raise _Deferred
        retries_before = source.retries()
        levels, stats = source.fetch(chunk, progress)
        storage.put_bytes(_staging_key(run_id, chunk), _part_bytes(levels), "application/gzip")
        done.add(chunk.label)
        detail = runs.update_run(storage, run_id, "running", {
            "chunks_done": [c.label for c in chunks if c.label in done],
            "pages": detail["pages"] + stats["pages"], "rows": detail["rows"] + stats["rows"],
            "incidents": detail["incidents"] + stats["incidents"],
            "retries": detail["retries"] + source.retries() - retries_before,
        })["detail"]
        lease.take()
        progress(f"[{index}/{len(chunks)}] {chunk.label}: {stats['rows']:,} rows in {stats['pages']} page(s), "
                 f"{stats['incidents']:,} incidents")
    if deadline is not None and deadline() < DEADLINE_MARGIN_S / 2:
        raise _Deferred
    boundaries = _store_boundaries(storage, source, detail["mode"])
    runs.update_run(storage, run_id, "running", {"phase": "publishing", "boundaries": boundaries})
    staged: dict[int, list[str]] = {}
    for chunk in chunks:
        staged.setdefault(chunk.year, []).append(_staging_key(run_id, chunk))
    window = None if detail["mode"] == "backfill" else (detail["window"]["from"], detail["window"]["to"])
    manifest = _publish(storage, _new_version(), staged, window, source.partial_month,
                        {"run_id": run_id, "source": source.describe(), "mode": detail["mode"]})
    lease.take()
    storage.delete_keys(storage.list_keys(f"{STAGING_PREFIX}{run_id}/"))
    dropped = _drop_old_versions(storage)
    view = runs.update_run(storage, run_id, "succeeded", {
        "phase": "done", "version": manifest["version"],
        "months_replaced": {**detail["window"], "count": len(_months(detail["window"]["from"], detail["window"]["to"]))},
        "stored": {"first_month": manifest["first_month"], "last_month": manifest["last_month"], "rows": manifest["rows"]},
        "partial_month": manifest["partial_month"], "changes": manifest["changes"], "versions_dropped": dropped,
        "duration_s": _duration(run),
    })
    lease.release()
    view = _evaluate_after_ingest(storage, run_id, view)
    progress(f"published {manifest['version']}: {manifest['rows']:,} rows {manifest['first_month']}..{manifest['last_month']}"
             + (f", {manifest['partial_month']} partial" if manifest["partial_month"] else "") + f" in {view['detail']['duration_s']} s")
    return view


def _evaluate_after_ingest(storage: Storage, run_id: str, view: dict[str, Any]) -> dict[str, Any]:
    """New months in: score the champion on them (which may start a retrain). An ingest
    does not fail because of it; the outcome is noted on the ingest run."""
    from . import evaluation
    from .errors import CrimecastError, NotFoundError

    try:
        evaluated = evaluation.evaluate_live(storage, trigger=f"after ingest {run_id}")
    except NotFoundError:
        return view  # no champion yet: nothing to score
    except CrimecastError as exc:
        return runs.update_run(storage, run_id, "succeeded", {"live_evaluation": {"error": str(exc)}})
    note = {"run_id": evaluated["run_id"], "series_evaluated": evaluated["detail"]["series_evaluated"],
            "retrain": evaluated["detail"]["retrain"]}
    return runs.update_run(storage, run_id, "succeeded", {"live_evaluation": note})


def _months(first: str, last: str) -> list[str]:
    months, month = [], first
    while month <= last:
        months.append(month)
        month = _add_months(month, 1)
    return months


# --- one call for the CLI and the local stack ------------------------------------------------


def run_now(storage: Storage, trigger: str, source: Source | None = None, progress: Progress = _quiet,
            page_size: int | None = None, **options: Any) -> dict[str, Any]:
    """Start a run and carry it out in this process; its final view. Without ``source``
    the portal is read (``options["source_label"]``: its URL, default CRIMECAST_SOCRATA_URL)."""
    if source is not None:
        options["source_label"] = source.describe()
    run = start(storage, trigger, **options)
    return execute(storage, run["run_id"], source, progress=progress, page_size=page_size)


def resume(storage: Storage, run_id: str, source: Source | None = None, progress: Progress = _quiet,
           page_size: int | None = None) -> dict[str, Any]:
    """Carry on a run that crashed or failed, from its checkpoint."""
    return execute(storage, run_id, source, progress=progress, resume=True, page_size=page_size)
