"""The series table: one item per series per model version (its forecast and metrics),
plus per version a catalog and a summary item, and the champion pointer."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
import json
import os
import threading
import time
from typing import Any

from crimecast.adapters import aws
from crimecast.adapters.limits import check_item
from crimecast.domain.errors import ConflictError

CHAMPION = "__champion__"  # series key of the pointer to the serving model version
CATALOG = "__catalog__"  # per version: the series and types it covers
SUMMARY = "__summary__"  # per version: accuracy over every series
LIVE_SUMMARY = "__live_summary__"  # per version: its latest live accuracy over every series scored
# One item: every series' standardised errors of its newest months, kept across evaluations
# and models, which the drift alarm judges (crimecast.jobs.live_evaluation).
DRIFT_ERRORS = "__drift_errors__"
# Per judged month ("YYYY-MM" as its version): the series the live evaluation found unusual
# that month (crimecast.domain.drift.unusual_in_month), which the page and /alerts show.
UNUSUAL = "__unusual__"
PROMOTED = "__promoted__"  # per version once served: when, by whom and why (a retrain, or an admin's rollback)
SKIPPED = "__skipped__"  # per version, in parts "<version>#<n>": the series with no model, and why
CURRENT = "current"

# Reads made with ``max_age`` (``get``: an item; ``versions``: every item of a key), per store
# object (its id, with the object itself kept so the id is not reused):
# {id: (store, {(series, version or None): (read_at, answer)})}. Each store's reads are kept
# least recently used first, at most MAX_CACHED_READS of them: the version is the caller's
# (``GET /evaluate?version=``), and every new one, found or not, would otherwise stay in a
# warm container's memory for good.
_read_cache: dict[int, tuple[Any, OrderedDict[tuple[str, str | None], tuple[float, Any]]]] = {}
_read_cache_lock = threading.Lock()


def _start_cold() -> None:
    """In a forked child (the local stack's Lambda sandboxes): none of the parent's reads, as a new
    execution environment starts with none, and a lock no thread of the parent can be holding."""
    global _read_cache_lock
    _read_cache_lock = threading.Lock()
    _read_cache.clear()


os.register_at_fork(after_in_child=_start_cold)
# A serving container reads every series of the champion in time (~1,400 items of ~6 KB for the
# city; SKIPPED_PART_BYTES plans for 3,000), and a catalog or two (at most ~400 KB each).
MAX_CACHED_READS = 4096


@dataclass(frozen=True)
class SeriesStore(aws.TableStore):
    def put_items(self, items: Iterable[dict[str, Any]]) -> None:
        self.forget_reads()  # this container's own writes are seen at once
        with self._table.batch_writer(overwrite_by_pkeys=["series", "version"]) as batch:
            for item in items:
                batch.put_item(Item=check_item(item, ("series", "version")))

    def get(self, series: str, version: str, max_age: float = 0.0) -> dict[str, Any] | None:
        """One item (None if absent). With ``max_age`` (seconds), the answer this process read at
        most that long ago, if any: a warm Lambda container keeps it between invocations."""
        return self._kept((series, version), max_age,
                          lambda: self._table.get_item(Key={"series": series, "version": version}).get("Item"))

    def _kept(self, key: tuple[str, str | None], max_age: float, read: Callable[[], Any]) -> Any:
        """``read()``, or with ``max_age`` its answer under ``key`` read at most that long ago."""
        if max_age <= 0:
            return read()
        now = time.monotonic()
        with _read_cache_lock:
            entry = _read_cache.get(id(self))
            cached = entry[1].get(key) if entry and entry[0] is self else None
            if cached and now - cached[0] < max_age:
                entry[1].move_to_end(key)  # type: ignore[index]
                return cached[1]
        answer = read()
        with _read_cache_lock:
            entry = _read_cache.get(id(self))
            if not entry or entry[0] is not self:
                entry = _read_cache[id(self)] = (self, OrderedDict())
            entry[1][key] = (now, answer)
            entry[1].move_to_end(key)
            while len(entry[1]) > MAX_CACHED_READS:
                entry[1].popitem(last=False)  # the least recently used
        return answer

    def cached_reads(self) -> int:
        """How many reads made with ``max_age`` this store keeps now."""
        with _read_cache_lock:
            entry = _read_cache.get(id(self))
            return len(entry[1]) if entry and entry[0] is self else 0

    def forget_reads(self) -> None:
        """Drop the reads made with ``max_age`` this store kept."""
        with _read_cache_lock:
            _read_cache.pop(id(self), None)

    def query_type_version(self, type_version: str) -> list[dict[str, Any]]:
        """Every item of one type in one version (the ByTypeVersion index), all pages."""
        from boto3.dynamodb.conditions import Key

        return self._items("query", IndexName="ByTypeVersion", KeyConditionExpression=Key("type_version").eq(type_version))

    def versions(self, series: str, max_age: float = 0.0) -> list[dict[str, Any]]:
        """Every item of one series key (e.g. every version's catalog), newest version first, all
        pages (with ``max_age``: as this process read them at most that many seconds ago)."""
        return self._kept((series, None), max_age, lambda: self._query_versions(series))

    def _query_versions(self, series: str) -> list[dict[str, Any]]:
        from boto3.dynamodb.conditions import Key

        return self._items("query", KeyConditionExpression=Key("series").eq(series), ScanIndexForward=False)

    def champion(self, max_age: float = 0.0) -> dict[str, Any] | None:
        """The pointer item naming the serving version, or None before the first promotion (with
        ``max_age``: as read by this process at most that many seconds ago)."""
        return self.get(CHAMPION, CURRENT, max_age)

    def set_champion(self, version: str, trained_at: str, replaces: str | None,
                     promotion: dict[str, Any] | None = None) -> None:
        """Serve ``version`` from now on: one write, so readers see the old or the new, never a mix.

        Conditional on the pointer still naming ``replaces`` (None: no champion yet), so a
        promotion decided against an older champion never overwrites a newer one:
        ConflictError when the pointer moved. ``promotion``: the record of this promotion
        (when, by whom, why, by which run), carried by the pointer itself, so that it exists
        exactly when the switch does."""
        from botocore.exceptions import ClientError

        if replaces is None:
            condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(series)"}
        else:
            condition = {"ConditionExpression": "model_version = :replaces",
                         "ExpressionAttributeValues": {":replaces": replaces}}
        item = check_item({"series": CHAMPION, "version": CURRENT, "model_version": version, "trained_at": trained_at,
                           **({"promotion": json.dumps(promotion)} if promotion else {})}, ("series", "version"))
        try:
            self._table.put_item(Item=item, **condition)
        except ClientError as exc:
            if aws.condition_failed(exc):
                current = (self.champion() or {}).get("model_version")
                raise ConflictError(f"the champion is {current}, not {replaces}: a newer promotion stands") from None
            raise
