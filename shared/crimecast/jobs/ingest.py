"""Ingestion: the city's crime records become monthly counts in S3, a new version per run.

Sources: the data portal (monthly counts aggregated by the portal, see
:mod:`crimecast.adapters.socrata`) or a file (a portal CSV export or tidy counts, for
offline use). Both go through the same path:

* **backfill**: 2001 to the current month, a year per query; the result replaces every
  stored month.
* **incremental** (the daily run): the trailing window (13 months by default) is pulled
  again and replaces those months as a whole, so records revised since (reclassified,
  re-dated) are counted where they now belong, and nothing is counted twice. Where the
  stored counts end before the window, the window starts there instead: no gap.

The current month is stored and marked partial (so is the previous one while the
portal's 7-day lag still hides its last days); training and scoring leave it out.

A run has two steps: ``open_run`` records it as queued, holding the ingest lease (a
second run is refused with ConflictError, 409, until the first ends or its lease lapses);
``execute`` does (or carries on) the work, checkpointing each fetched chunk in the run
record, so a run that crashed, failed or ran out of Lambda time resumes where it stopped.
The counts themselves are written through :mod:`crimecast.jobs.counts`; what starts a run
and what follows it (live evaluation) is :mod:`crimecast.jobs.pipeline`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
import json
import logging
from pathlib import Path
import time
from typing import TYPE_CHECKING, Any

from crimecast import settings
from crimecast.adapters.blobs import BOUNDARIES_KEY
from crimecast.adapters.socrata import MAX_PAGE_SIZE, PortalDataError, SocrataClient
from crimecast.adapters.stores import Stores
from crimecast.domain.errors import ConflictError, CrimecastError, InvalidInputError
from crimecast.domain.months import add_months, month_of, month_range, partial_month
from crimecast.jobs import counts, runs

if TYPE_CHECKING:  # pandas is imported where it is used: the API's start of a run needs none
    import pandas as pd

logger = logging.getLogger(__name__)

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

WORKER_EVENT_KEY = "crimecast_ingest_worker"

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


# --- sources -----------------------------------------------------------------------------


class PortalSource:
    """Monthly aggregates from the data portal, checked against the portal's own count."""

    def __init__(self, client: SocrataClient, as_of: date) -> None:
        self.client = client
        self.as_of = as_of

    def describe(self) -> str:
        return self.client.base_url

    def window(self, mode: str, window_months: int, stored_last: str | None, first_year: int) -> tuple[str, str]:
        end = month_of(self.as_of)
        if mode == "backfill":
            return f"{first_year}-01", end
        start = add_months(end, -(window_months - 1))
        if stored_last is not None and stored_last < start:
            start = stored_last  # the last ingest was long ago: fill the months since
        return start, end

    def retries(self) -> int:
        return self.client.stats.retries

    def protocol(self) -> str | None:
        """The SODA version that answered (SODA 3, or 2.1 as the fallback), once one has."""
        return self.client.stats.protocol

    def fetch(self, chunk: Chunk, progress: Progress) -> tuple[pd.DataFrame, dict[str, int]]:
        """Every level of the chunk's months. The pages must add up to the portal's count of
        incidents over the same dates; if the data changed while paging, read again."""
        import pandas as pd

        from crimecast.domain.series import levels_from_aggregates

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
                        raise PortalDataError(f"{chunk.label}: the portal returned a row without a count: {page[0]}")
                    incidents += int(numbers.sum())
                    frames.append(frame)
            expected = self.client.incident_total(start, end)
            if expected == incidents:
                break
            progress(f"{chunk.label}: the pages add up to {incidents:,} incidents but the portal counts {expected:,}: "
                     f"the data changed while paging, reading again ({attempt}/{CHUNK_READS})")
        else:
            raise PortalDataError(f"{chunk.label}: the pages never added up to the portal's count after {CHUNK_READS} reads")
        cells = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["month", "community_area", "primary_type", "n"])
        levels = levels_from_aggregates(cells.rename(columns={"n": "count"}))
        months = levels["month"].astype(str)
        outside = months[(months < chunk.first) | (months > chunk.last)]
        if not outside.empty:
            raise PortalDataError(f"{chunk.label}: the portal returned month {outside.iloc[0]}, outside the dates asked for")
        return levels, {"pages": pages, "rows": rows, "incidents": incidents}

    def partial_month(self, last_month: str) -> str | None:
        """The last month is partial while it is not over, or not yet past the portal's lag."""
        return partial_month(last_month, self.as_of - timedelta(days=PORTAL_LAG_DAYS))

    def boundaries(self) -> dict[str, Any] | None:
        return self.client.boundaries()


class FileSource:
    """A portal CSV export or a tidy counts file: the months it covers, all its levels."""

    def __init__(self, path: str | Path) -> None:
        from crimecast.domain.series import read_counts

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
        return self.counts.partial_if_last(last_month)

    def boundaries(self) -> dict[str, Any] | None:
        return None


Source = PortalSource | FileSource


def _staging_key(run_id: str, chunk: Chunk) -> str:
    return f"{counts.STAGING_PREFIX}{run_id}/{chunk.label}.csv.gz"


# --- boundaries --------------------------------------------------------------------------


def normalise_boundaries(document: dict[str, Any]) -> dict[str, Any]:
    """The 77 community areas, each once, as ``{area_number, name}`` features (official names)."""
    from crimecast.domain.areas import AREAS, find_area

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


def _store_boundaries(stores: Stores, source: Source, mode: str) -> str:
    if mode != "backfill" and stores.blobs.list_keys(BOUNDARIES_KEY):
        return "kept (already stored)"
    try:
        document = source.boundaries()
        if document is None:
            return "not fetched (file source)"
        body = json.dumps(normalise_boundaries(document), separators=(",", ":")).encode()
    except CrimecastError as exc:  # the map can wait for the next run; the counts should not
        return f"not stored: {exc}"
    stores.blobs.put_bytes(BOUNDARIES_KEY, body, "application/geo+json")
    return "stored (77 areas)"


# --- one run at a time --------------------------------------------------------------------


class Lease:
    """The ingest lease, held in the name of one run."""

    def __init__(self, stores: Stores, run_id: str) -> None:
        self.stores = stores
        self.run_id = run_id

    def take(self) -> None:
        """Take or renew the lease; ConflictError while another live run holds it."""
        now = int(time.time())
        blocker = self.stores.leases.take(LEASE_NAME, self.run_id, now + LEASE_SECONDS, now)
        if blocker is None:
            return
        holder = str(blocker.get("holder"))
        other = self.stores.runs.get(holder)
        if other is None or other.get("status") in ("succeeded", "failed"):  # ended without letting go
            if self.stores.leases.take(LEASE_NAME, self.run_id, now + LEASE_SECONDS, now, steal_from=holder) is None:
                return
        until = datetime.fromtimestamp(int(blocker.get("lease_until", now)), UTC).strftime("%H:%M:%SZ")
        raise ConflictError(f"ingest run {holder} is in progress (lease until {until}): follow it at GET /runs/{holder}",
                            run_id=holder)

    def release(self) -> None:
        self.stores.leases.release(LEASE_NAME, self.run_id)


def _abandon_stale(stores: Stores, lease: dict[str, Any] | None, taker: str) -> None:
    """A run whose lease lapsed while it was queued or running has died: say so on its record."""
    holder = (lease or {}).get("holder")
    if not holder or holder == taker:
        return
    item = stores.runs.get(str(holder))
    if item and item.get("status") in ("queued", "running"):
        runs.fail_run(stores, str(holder), {
            "code": "abandoned",
            "message": f"abandoned: its worker stopped without finishing (lease lapsed); run {taker} took over; "
                       "its fetched chunks are kept for a resume"})


# --- starting runs -------------------------------------------------------------------------


def check_options(mode: str, window_months: int) -> None:
    if mode not in MODES:
        raise InvalidInputError(f"unknown ingest mode {mode!r}", MODES)
    if not MIN_WINDOW_MONTHS <= window_months <= MAX_WINDOW_MONTHS:
        raise InvalidInputError(f"window_months must be {MIN_WINDOW_MONTHS}..{MAX_WINDOW_MONTHS} (the previous month "
                                f"is still being completed during the portal's {PORTAL_LAG_DAYS}-day lag)")


def open_run(stores: Stores, trigger: str, *, mode: str = "incremental", window_months: int = DEFAULT_WINDOW_MONTHS,
          as_of: date | None = None, source_label: str | None = None, first_year: int = FIRST_YEAR) -> dict[str, Any]:
    """Record a queued ingest run holding the lease; ConflictError while another one runs.
    ``source_label``: the portal's base URL (default: CRIMECAST_SOCRATA_URL, else the city's) or ``file:<name>``."""
    check_options(mode, window_months)
    run_id = runs.new_run_id("ingest")
    before = stores.leases.get(LEASE_NAME)
    lease = Lease(stores, run_id)
    lease.take()
    try:
        _abandon_stale(stores, before, run_id)
        detail = {"trigger": trigger, "mode": mode, "window_months": window_months,
                  "as_of": (as_of or datetime.now(UTC).date()).isoformat(), "first_year": first_year,
                  "source": source_label or SocrataClient(None).base_url}
        return runs.start_run(stores, "ingest", detail, run_id=run_id)
    except BaseException:
        lease.release()
        raise


def worker_event(run_id: str, leg: int = 0) -> dict[str, Any]:
    return {WORKER_EVENT_KEY: {"run_id": run_id, "leg": leg}}


# --- doing the work -------------------------------------------------------------------------


class _Deferred(Exception):
    """Out of time in this invocation: a new one carries on from the checkpoint."""


def _duration(run: dict[str, Any]) -> float:
    started = datetime.strptime(run["started_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    return round((datetime.now(UTC) - started).total_seconds(), 1)


def _portal_source(detail: dict[str, Any], progress: Progress, page_size: int | None = None) -> PortalSource:
    source = str(detail.get("source", ""))
    if source.startswith("file:"):
        raise InvalidInputError(f"run imports {source[5:]}: resume it with --from-file and that file")
    page_size = page_size or settings.load(settings.PortalSettings).page_size or MAX_PAGE_SIZE
    return PortalSource(SocrataClient.from_env(source or None, page_size=page_size, log=progress),
                        date.fromisoformat(detail["as_of"]))


def execute(stores: Stores, run_id: str, source: Source | None = None, *, progress: Progress = _quiet,
            deadline: Callable[[], float] | None = None, resume: bool = False, page_size: int | None = None) -> dict[str, Any]:
    """Carry out (or carry on) ingest run ``run_id``; returns its view.

    The run ends ``succeeded`` or ``failed`` (its error recorded, the serving counts
    untouched, fetched chunks kept for a resume), or stays ``running`` when ``deadline``
    (seconds left) ran short: the caller starts a new invocation. A failed run is taken
    up again only with ``resume``.
    """
    run = runs.get_run(stores, run_id)
    if run["kind"] != "ingest":
        raise InvalidInputError(f"run {run_id} is a {run['kind']} run, not an ingest")
    if run["status"] == "succeeded" or (run["status"] == "failed" and not resume):
        return run
    lease = Lease(stores, run_id)
    lease.take()
    try:
        source = source or _portal_source(run["detail"], progress, page_size)
        if isinstance(source, PortalSource):  # back-offs can be long: each one renews the lease
            log = source.client.log
            source.client.log = lambda message: (log(message), lease.take())
        return _work(stores, run, source, progress, deadline, lease)
    except _Deferred:
        view = runs.update_run(stores, run_id, "running", {"phase": "continuing in a new invocation"})
        progress("out of time in this invocation: a new one carries on from the checkpoint")
        return view
    except Exception as exc:
        error = runs.describe_error(exc)
        expected = isinstance(exc, CrimecastError)  # else an error of ours or AWS's (AccessDenied names the action and role)
        logger.log(logging.WARNING if expected else logging.ERROR, "ingest run %s failed: %s", run_id, error["detail"],
                   exc_info=not expected)
        progress(f"failed: {error['message'] if isinstance(exc, CrimecastError) else error['detail']}")
        view = runs.fail_run(stores, run_id, error, {"phase": "failed", "duration_s": _duration(run)})
        lease.release()
        return view


def _work(stores: Stores, run: dict[str, Any], source: Source, progress: Progress,
          deadline: Callable[[], float] | None, lease: Lease) -> dict[str, Any]:
    run_id, detail = run["run_id"], run["detail"]
    if "chunks" not in detail:  # first leg: fix the plan, so a resume covers the same months
        pointer = counts.current_manifest(stores)
        mode = detail["mode"]
        note = {}
        if mode == "incremental" and pointer is None:
            mode, note = "backfill", {"note": "no counts stored yet: a full backfill instead of an incremental run"}
        first, last = source.window(mode, int(detail["window_months"]), pointer["last_month"] if pointer else None,
                                    int(detail.get("first_year", FIRST_YEAR)))
        chunks = plan_chunks(first, last)
        detail = runs.update_run(stores, run_id, "running", {
            **note, "mode": mode, "source": source.describe(), "window": {"from": first, "to": last},
            "chunks": [c.label for c in chunks], "chunks_done": [], "pages": 0, "rows": 0, "incidents": 0, "retries": 0,
            "phase": "fetching", "base_version": pointer["version"] if pointer else None,
        })["detail"]
        progress(f"{run_id}: {mode} {first}..{last} from {source.describe()} ({len(chunks)} queries)")
    else:
        detail = runs.clear_error(stores, run_id, "running",
                                  {"phase": "fetching", "legs": int(detail.get("legs", 1)) + 1})["detail"]
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
        stores.blobs.put_bytes(_staging_key(run_id, chunk), counts.part_bytes(levels), "application/gzip")
        done.add(chunk.label)
        detail = runs.update_run(stores, run_id, "running", {
            "chunks_done": [c.label for c in chunks if c.label in done],
            "pages": detail["pages"] + stats["pages"], "rows": detail["rows"] + stats["rows"],
            "incidents": detail["incidents"] + stats["incidents"],
            "retries": detail["retries"] + source.retries() - retries_before,
            **({"protocol": protocol} if (protocol := getattr(source, "protocol", lambda: None)()) else {}),
        })["detail"]
        lease.take()
        progress(f"[{index}/{len(chunks)}] {chunk.label}: {stats['rows']:,} rows in {stats['pages']} page(s), "
                 f"{stats['incidents']:,} incidents")
    if deadline is not None and deadline() < DEADLINE_MARGIN_S / 2:
        raise _Deferred
    if detail.get("published_version"):  # a retry or resume of a run that died after publishing
        manifest = counts.version_manifest(stores, detail["published_version"])
    else:
        boundaries = _store_boundaries(stores, source, detail["mode"])
        runs.update_run(stores, run_id, "running", {"phase": "publishing", "boundaries": boundaries})
        staged: dict[int, list[str]] = {}
        for chunk in chunks:
            staged.setdefault(chunk.year, []).append(_staging_key(run_id, chunk))
        window = None if detail["mode"] == "backfill" else (detail["window"]["from"], detail["window"]["to"])
        manifest = counts.publish(stores, counts.new_version(), staged, window, source.partial_month,
                                  {"run_id": run_id, "source": source.describe(), "mode": detail["mode"]})
        # Recorded before the staged chunks go: a retry after this point finishes on this version.
        runs.update_run(stores, run_id, "running", {"published_version": manifest["version"]})
    lease.take()
    stores.blobs.delete_keys(stores.blobs.list_keys(f"{counts.STAGING_PREFIX}{run_id}/"))
    dropped = counts.drop_old_versions(stores)
    view = runs.update_run(stores, run_id, "succeeded", {
        "phase": "done", "version": manifest["version"],
        "months_replaced": {**detail["window"], "count": len(month_range(detail["window"]["from"], detail["window"]["to"]))},
        "stored": {"first_month": manifest["first_month"], "last_month": manifest["last_month"], "rows": manifest["rows"]},
        "partial_month": manifest["partial_month"], "changes": manifest["changes"], "versions_dropped": dropped,
        "duration_s": _duration(run),
    })
    lease.release()
    progress(f"published {manifest['version']}: {manifest['rows']:,} rows {manifest['first_month']}..{manifest['last_month']}"
             + (f", {manifest['partial_month']} partial" if manifest["partial_month"] else "") + f" in {view['detail']['duration_s']} s")
    return view
