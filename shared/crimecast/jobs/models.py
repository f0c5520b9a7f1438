"""Model versions for admins: every version trained, its backtest and live accuracy, and a
rollback (serve a previous version again), recorded as a run with who and why."""

from __future__ import annotations

import json
from typing import Any

from crimecast.adapters.series_store import CATALOG, LIVE_SUMMARY, SUMMARY
from crimecast.adapters.stores import Stores
from crimecast.domain.errors import ConflictError, InvalidInputError, NotFoundError
from crimecast.jobs import forecasts, runs

MAX_REASON = 500  # characters of an admin's reason kept on the run


def _doc(stores: Stores, series: str, version: str) -> dict[str, Any] | None:
    item = stores.series.get(series, version)
    return json.loads(item["payload"]) if item else None


def _backtest(summary: dict[str, Any] | None) -> dict[str, Any] | None:
    if not summary:
        return None
    return {"series": summary.get("series"), "median_mase": (summary.get("mase") or {}).get("median"),
            "median_mae": (summary.get("mae") or {}).get("median"), "coverage": summary.get("coverage"),
            "share_beating_seasonal_naive": summary.get("share_beating_seasonal_naive")}


def _problem(stores: Stores, version: str, catalog: dict[str, Any], summary: dict[str, Any] | None,
             count_items: bool) -> str | None:
    """Why ``version`` cannot be served (None when it can)."""
    if not catalog.get("series"):
        return "it has no trained series"
    if summary is None:
        return "its accuracy summary is missing"
    if count_items:
        expected: dict[str, int] = {}
        for label in catalog["series"]:
            kind = label.rpartition(":")[2]
            expected[kind] = expected.get(kind, 0) + 1
        for kind, n in sorted(expected.items()):
            stored = len(stores.series.query_type_version(f"{kind}#{version}"))
            if stored < n:
                return f"it is incomplete: {stored} of its {n} {kind} series are stored"
    return None


def list_versions(stores: Stores) -> dict[str, Any]:
    """Every version with a catalog (newest first): served now or before, backtest and live accuracy."""
    pointer = stores.series.champion() or {}
    champion = pointer.get("model_version")
    promoted = forecasts.promoted_versions(stores)
    versions = []
    for item in stores.series.versions(CATALOG):
        version = str(item["version"])
        catalog = json.loads(item["payload"])
        summary = _doc(stores, SUMMARY, version)
        versions.append({
            "version": version, "serving": version == champion, "promoted": promoted.get(version),
            "series": len(catalog.get("series", [])), "types": len(catalog.get("types", [])),
            "backtest": _backtest(summary), "live": _doc(stores, LIVE_SUMMARY, version),
            "problem": _problem(stores, version, catalog, summary, count_items=False),
        })
    return {"champion": champion, "versions": versions}


def promote_version(stores: Stores, version: str, reason: str, who: str) -> dict[str, Any]:
    """Serve ``version`` again (an admin's rollback), recorded as a ``promote`` run with who and why.

    404 for a version never trained; 409 for one that cannot be served (incomplete, no series),
    that is already serving, or that lost the race to another promotion (its run ends failed,
    saying so); 400 without a reason. Retried after its switch (the first request died before
    recording it), the first request's run is recorded as promoted and returned: one run.
    """
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInputError("say why: a reason is required, and is kept with the run")
    item = stores.series.get(CATALOG, version)
    if item is None:
        raise NotFoundError(f"no model version {version!r}")
    catalog = json.loads(item["payload"])
    pointer = stores.series.champion() or {}
    previous = pointer.get("model_version")
    if previous == version:
        unrecorded = _unrecorded_promotion(stores, pointer)
        if unrecorded is not None:
            return _record_promoted(stores, unrecorded["run_id"], version, unrecorded["detail"])
        raise ConflictError(f"{version} is already serving",
                            run_id=(forecasts.promotion_record(stores, version) or {}).get("run_id"))
    problem = _problem(stores, version, catalog, _doc(stores, SUMMARY, version), count_items=True)
    if problem:
        raise ConflictError(f"{version} cannot be served: {problem}")
    first = stores.series.get(catalog["series"][0], version)
    detail = {"trigger": "api", "version": version, "previous": previous, "by": who, "reason": reason[:MAX_REASON]}
    run_id = runs.start_run(stores, "promote", detail)["run_id"]
    try:
        forecasts.promote(stores, version, str(first["trained_at"]) if first else runs.now_iso(), replaces=previous, by=who,
                          reason=detail["reason"], run_id=run_id)
    except ConflictError:
        winner = (stores.series.champion() or {}).get("model_version")
        message = (f"not promoted: {winner or 'another version'} was promoted while this request ran "
                   f"(it was based on {previous or 'no champion'}); a newer promotion is not overwritten")
        runs.fail_run(stores, run_id, {"code": "superseded", "message": message})
        raise ConflictError(message, run_id=run_id) from None
    except Exception as exc:
        if not forecasts.promoted_by_run(stores, version, run_id):  # the switch did not happen: the run ends failed
            runs.fail_run(stores, run_id, exc)
            raise
        # it did: what failed is its record, written below
    return _record_promoted(stores, run_id, version, detail)


def _unrecorded_promotion(stores: Stores, pointer: dict[str, Any]) -> dict[str, Any] | None:
    """The ``promote`` run that switched ``pointer`` and never ended (its request died between
    the switch and its record; this is a retry), or None."""
    run_id = (forecasts.promotion_record(stores, str(pointer["model_version"])) or {}).get("run_id")
    item = stores.runs.get(str(run_id)) if run_id else None
    if not item or item.get("kind") != "promote" or item.get("status") in runs.ENDED:
        return None
    return runs.view(item)


def _record_promoted(stores: Stores, run_id: str, version: str, detail: dict[str, Any]) -> dict[str, Any]:
    """Run ``run_id`` switched the champion to ``version``: record the promotion and end the run."""
    forecasts.write_promotion_record(stores, version)
    return runs.update_run(stores, run_id, "succeeded",
                           {"promotion": {"promoted": True, "reason": f"rolled back by an admin: {detail.get('reason')}"}})
