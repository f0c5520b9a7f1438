"""The serving monthly counts in the bucket: versions written whole, one pointer flipped.

Layout in ``DATA_BUCKET``::

    counts/current.json                        the pointer: manifest of the serving version
    counts/versions/<v>/monthly_counts.csv.gz  every month and level, one object: what training reads
    counts/versions/<v>/parts/<year>.csv.gz    the same rows a year per object (no header)
    counts/versions/<v>/manifest.json          months, rows, partial month, source, parts
    counts/staging/<run_id>/<chunk>.csv.gz     fetched chunks of an unfinished run: its checkpoint
    boundaries/community_areas.geojson         the community areas, for the map

A version is written completely, then the pointer flips in one conditional PUT: a run that
fails at any point leaves the serving counts as they were, and two publishes at once never
lose one's months to the other's stale copy. Old versions are dropped, except those a
running retrain pinned. Ingest writes through here; training, live evaluation and the
local stack read through here.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
import gzip
import io
import json
import logging
from typing import TYPE_CHECKING, Any
import uuid

from crimecast.adapters.stores import Stores
from crimecast.domain.errors import ConfigurationError, ConflictError, InvalidInputError
from crimecast.domain.months import add_months
from crimecast.jobs import runs

if TYPE_CHECKING:
    import pandas as pd


logger = logging.getLogger(__name__)

COUNTS_KEY = "counts/current.json"  # the pointer to the serving counts version; training reads through it
VERSIONS_PREFIX = "counts/versions/"
STAGING_PREFIX = "counts/staging/"
COUNTS_FILE = "monthly_counts.csv.gz"
KEEP_VERSIONS = 5  # older versions are deleted after a publish (the bucket's versioning keeps them 30 days more)
PUBLISH_ATTEMPTS = 3  # builds of a version on a pointer another publish keeps moving, before giving up

PART_COLUMNS = ["month", "community_area", "primary_type", "count"]
HEADER = (",".join(PART_COLUMNS) + "\n").encode()



def part_bytes(frame: pd.DataFrame) -> bytes:
    text = frame[PART_COLUMNS].assign(month=frame["month"].astype(str)).to_csv(index=False, header=False)
    return gzip.compress(text.encode(), compresslevel=6, mtime=0)


def _read_part(stores: Stores, key: str) -> pd.DataFrame:
    import pandas as pd

    body = stores.blobs.get_bytes(key)
    if body is None:
        raise ConfigurationError(f"s3 object {key} is missing: the stored counts are damaged")
    return pd.read_csv(io.BytesIO(body), compression="gzip", header=None, names=PART_COLUMNS, dtype=str, keep_default_na=False)


def new_version() -> str:
    """A counts version whose name sorts in the order versions were made, to the microsecond:
    drop_old_versions keeps the newest by name (with seconds only, two ingests in one second
    sorted by their random suffix, and the newest could be the one deleted)."""
    return f"v{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:6]}"


def current_manifest(stores: Stores) -> dict[str, Any] | None:
    """The serving version's manifest (the pointer), or None before the first ingest."""
    return stores.blobs.get_json(COUNTS_KEY)


def version_manifest(stores: Stores, version: str) -> dict[str, Any]:
    """The manifest of one stored counts version (ConfigurationError if it is gone)."""
    manifest = stores.blobs.get_json(f"{VERSIONS_PREFIX}{version}/manifest.json")
    if manifest is None:
        raise ConfigurationError(f"counts version {version} is not in the bucket (deleted after newer ingests?)")
    return manifest


def load_counts(stores: Stores, version: str | None = None) -> Any:
    """The monthly counts (MonthlyCounts), partial month flagged: the serving version, or
    ``version`` exactly (a retrain's batches read the version its plan pinned, whatever an
    ingest published since)."""
    import pandas as pd

    from crimecast.domain.series import counts_from_frame

    pointer = current_manifest(stores) if version is None else version_manifest(stores, version)
    if pointer is None:
        raise InvalidInputError(f"no monthly counts in the bucket yet ({COUNTS_KEY}): run an ingest first")
    body = stores.blobs.get_bytes(pointer["counts_key"])
    if body is None:
        raise ConfigurationError(f"counts version {pointer['version']} is missing its file {pointer['counts_key']}")
    tidy = pd.read_csv(io.BytesIO(body), compression="gzip", dtype=str, keep_default_na=False)
    tidy["partial_month"] = tidy["month"] == (pointer.get("partial_month") or "")
    return counts_from_frame(tidy).with_spans(_months_by_key(pointer, "series_starts"), _months_by_key(pointer, "series_ends"),
                                              _gaps_by_key(pointer))


def _months_by_key(manifest: dict[str, Any], name: str) -> dict[Any, Any]:
    """The series of a stored version that start after its first month, or end before its last."""
    import pandas as pd

    from crimecast.domain.keys import SeriesKey

    return {SeriesKey.parse(label): pd.Period(month, freq="M") for label, month in (manifest.get(name) or {}).items()}


def _gaps_by_key(manifest: dict[str, Any]) -> dict[Any, list[tuple[Any, Any]]]:
    """The series of a stored version with months unknown between two sources, and those runs of months."""
    import pandas as pd

    from crimecast.domain.keys import SeriesKey

    return {SeriesKey.parse(label): [(pd.Period(a, freq="M"), pd.Period(b, freq="M")) for a, b in months]
            for label, months in (manifest.get("series_gaps") or {}).items()}


def _carried_gaps(pointer: dict[str, Any] | None, window: tuple[str, str] | None) -> dict[str, list[list[str]]]:
    """Unknown runs of months kept through an ingest, less the window's months: the window
    brings every series' rows for its months (a month with no row is then a zero, known)."""
    if pointer is None or window is None:
        return {}
    carried = {}
    for label, months in (pointer.get("series_gaps") or {}).items():
        kept = []
        for first, last in months:
            if first < window[0]:
                kept.append([first, min(last, add_months(window[0], -1))])
            if last > window[1]:
                kept.append([max(first, add_months(window[1], 1)), last])
        if kept:
            carried[label] = kept
    return carried


def _carried_ends(pointer: dict[str, Any] | None, window: tuple[str, str] | None) -> dict[str, str]:
    """Early ends kept through an ingest: a window that starts right after a series' end
    (or earlier) fills it in, so that series then runs to the new last month."""
    if pointer is None or window is None:
        return {}
    return {label: month for label, month in (pointer.get("series_ends") or {}).items() if add_months(month, 1) < window[0]}


def store_counts(stores: Stores, counts: Any) -> None:
    """Replace the stored counts with ``counts`` (MonthlyCounts) as a new version."""
    version = new_version()
    frame = counts.frame
    months = frame["month"].astype(str)
    staged: dict[int, list[str]] = {}
    for year in sorted({int(m[:4]) for m in months.unique()}):
        key = f"{STAGING_PREFIX}{version}/{year}.csv.gz"
        stores.blobs.put_bytes(key, part_bytes(frame[months.str.startswith(f"{year}-")]), "application/gzip")
        staged[year] = [key]
    publish(stores, version, staged, None, counts.partial_if_last,
            {"source": "store_counts", "mode": "backfill", **counts.spans_by_label()})
    stores.blobs.delete_keys(stores.blobs.list_keys(f"{STAGING_PREFIX}{version}/"))


def _changes(old: pd.DataFrame, new: pd.DataFrame) -> dict[str, int]:
    """Cells (month, area, type at every level) whose count differs, and the city totals."""
    keys = ["month", "community_area", "primary_type"]
    merged = old.merge(new, on=keys, how="outer", suffixes=("_old", "_new"))
    changed = int((merged["count_old"].fillna("0").astype(int) != merged["count_new"].fillna("0").astype(int)).sum())

    def city_total(frame: pd.DataFrame) -> int:
        rows = frame[(frame["community_area"] == "") & (frame["primary_type"] == "ALL")]
        return int(rows["count"].astype(int).sum())

    return {"cells_changed": changed, "incidents_before": city_total(old), "incidents_after": city_total(new)}


def publish(stores: Stores, version: str, staged: dict[int, list[str]], window: tuple[str, str] | None,
            partial_of: Callable[[str], str | None], meta: dict[str, Any]) -> dict[str, Any]:
    """Write version ``version`` and point the service at it; its manifest.

    ``staged``: per year, the keys of rows fetched for the months of ``window`` (None: a
    backfill, which replaces every stored month). Old rows of the window's months are
    dropped even where the new data has none (no incident is a zero, not a gap); other
    years are copied from the serving version.

    The flip is conditional on the pointer the version was built on (S3's If-Match): when
    another publish flipped it meanwhile, this one is built again on top of that one (as a
    new version, which the manifest names) instead of overwriting it with stale years.
    """
    for attempt in range(1, PUBLISH_ATTEMPTS + 1):
        body, tag = stores.blobs.get_tagged(COUNTS_KEY)
        pointer = None if body is None else json.loads(body)
        manifest = _write_version(stores, version, pointer, staged, window, partial_of, meta)
        try:
            stores.blobs.put_json(COUNTS_KEY, manifest, if_match=tag, if_absent=tag is None)  # the flip: one PUT
            return manifest
        except ConflictError:
            if (current_manifest(stores) or {}).get("version") == version:  # flipped by this call; the answer was lost
                return manifest
            logger.warning("counts version %s was built on %s, and another publish flipped the pointer meanwhile "
                           "(attempt %d of %d)", version, (pointer or {}).get("version"), attempt, PUBLISH_ATTEMPTS)
            stores.blobs.delete_keys(stores.blobs.list_keys(f"{VERSIONS_PREFIX}{version}/"))  # never served
            version = new_version()
    raise ConflictError(f"the serving counts changed under each of {PUBLISH_ATTEMPTS} attempts to publish: "
                        "nothing of this run was published (its fetched data is kept; run it again)")


def _write_version(stores: Stores, version: str, pointer: dict[str, Any] | None, staged: dict[int, list[str]],
                   window: tuple[str, str] | None, partial_of: Callable[[str], str | None],
                   meta: dict[str, Any]) -> dict[str, Any]:
    """Every object of version ``version``, built on the serving version ``pointer``; its manifest."""
    import pandas as pd

    old_parts = {} if window is None or pointer is None else {int(y): p for y, p in pointer["parts"].items()}
    prefix = f"{VERSIONS_PREFIX}{version}/"
    parts: dict[int, dict[str, Any]] = {}
    changes = {"cells_changed": 0, "incidents_before": 0, "incidents_after": 0}
    for year in sorted(set(old_parts) | set(staged)):
        key = f"{prefix}parts/{year}.csv.gz"
        old = old_parts.get(year)
        if year not in staged:
            stores.blobs.copy(old["key"], key)
            parts[year] = {**old, "key": key}
            continue
        new = pd.concat([_read_part(stores, k) for k in staged[year]], ignore_index=True)
        if old is not None:
            kept = _read_part(stores, old["key"])
            inside = (kept["month"] >= window[0]) & (kept["month"] <= window[1])
            for name, value in _changes(kept[inside], new).items():
                changes[name] += value
            new = pd.concat([kept[~inside], new], ignore_index=True)
        elif window is not None:
            changes["incidents_after"] += _changes(new.iloc[:0], new)["incidents_after"]
        if new.empty:
            continue
        new = new.sort_values(["month", "community_area", "primary_type"], kind="stable")
        body = part_bytes(new)
        stores.blobs.put_bytes(key, body, "application/gzip")
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
        body = stores.blobs.get_bytes(parts[year]["key"])
        if body is None:
            raise ConfigurationError(f"s3 object {parts[year]['key']} vanished while publishing")
        bodies.append(body)
    counts_key = f"{prefix}{COUNTS_FILE}"
    combined = b"".join(bodies)
    stores.blobs.put_bytes(counts_key, combined, "application/gzip")
    manifest = {
        "version": version, "created_at": runs.now_iso(), "counts_key": counts_key, "bytes": len(combined),
        "first_month": min(p["first_month"] for p in parts.values()), "last_month": last_month, "partial_month": partial,
        "rows": sum(p["rows"] for p in parts.values()), "window": list(window) if window else None,
        "previous_version": pointer["version"] if pointer else None,
        "series_starts": (pointer or {}).get("series_starts") if window else None,
        "series_ends": _carried_ends(pointer, window), "series_gaps": _carried_gaps(pointer, window), **meta,
        "changes": changes if window is not None and pointer is not None else None,
        "parts": {str(year): parts[year] for year in sorted(parts)},
    }
    stores.blobs.put_json(f"{prefix}manifest.json", manifest)
    return manifest


def pinned_versions(stores: Stores) -> set[str]:
    """The counts versions that retrains which have not ended read: each one's plan pinned one."""
    return {str(version) for run in runs.unfinished(stores, "retrain") if (version := run["detail"].get("counts_version"))}


def drop_old_versions(stores: Stores, keep: int | None = None) -> int:
    """Delete all but the newest ``keep`` versions, never the serving one nor one a retrain that
    has not ended pinned (its batches read it for hours). Best effort: nothing is deleted when
    the pins cannot be read."""
    keep = keep or KEEP_VERSIONS
    try:
        serving = (current_manifest(stores) or {}).get("version")
        pinned = pinned_versions(stores)
        by_version: dict[str, list[str]] = {}
        for key in stores.blobs.list_keys(VERSIONS_PREFIX):
            by_version.setdefault(key[len(VERSIONS_PREFIX):].split("/", 1)[0], []).append(key)
        old = [v for v in sorted(by_version)[:-keep] if v != serving and v not in pinned]
        stores.blobs.delete_keys(k for v in old for k in by_version[v])
        return len(old)
    except Exception:  # noqa: BLE001 - housekeeping must not fail a published run
        logger.exception("could not delete old counts versions")
        return 0


