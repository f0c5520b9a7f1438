"""Drift: do the newest months say the forecasts no longer hold? Pure, no I/O.

Each complete month that arrives is read against the forecast the service published for it
before it happened. The forecast's 80% band is symmetric on the square-root scale (the
variance-stabilising scale for counts, :mod:`crimecast.domain.model`), so it gives the
month a standardised error

    z = (sqrt(actual) - sqrt(yhat)) / sigma,   sigma = (sqrt(upper) - sqrt(yhat)) / 1.2816

which is about standard normal while the forecasts hold: |z| > 1.28 is "outside the band",
one month in five by chance.

A series has *moved* when its newest months, together, are too far from their forecasts to
be chance: for the windows of its last 1, 2 and 3 scored months (each ending with the
newest), S_w = sum(z) / sqrt(w), and its p-value is the smallest two-sided normal p of the
three, times 3 (Bonferroni over the windows). One month far outside (a step, COVID's
April) is found at once; a smaller shift that lasts is found by the longer windows; one
outlier month among calm ones weighs less with every month after it.

The alarm combines the series with the Benjamini-Hochberg procedure at false-discovery rate
``q``: the series it finds are the moved ones. It sounds when a moved series is an
*aggregate* (an area's total, a citywide type, the city: sums of many reports), or when at
least ``min_cells`` area x type cells moved (where no aggregate is judged, one cell). While
every series' forecasts hold (calibrated bands, independent series), the alarm sounds in at
most ``q`` of the evaluations, whatever the number of series. Why cells need company: a cell
holds a few reports a month, and its errors have a heavier far tail than the band's normal,
so among ~1,300 cells one or two are found now and then by chance (the whole-city replay,
``bench/replay.py``: 3 cells in 24 months, two of them in one month), while a change the
city plans for moves an aggregate too (a type in many areas moves its citywide series; an
area in many types, its total) or several cells at once. A lone cell's month is still found
and shown as unusual.

The same test on the newest month alone gives :func:`unusual_in_month`: a month outside its
band whose series the alarm's test finds. The live evaluation records each month it judges
that way, and the page and ``/alerts`` show those records: what they call unusual is what the
loop acts on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
import math
from statistics import NormalDist
from typing import Any

from crimecast.domain.crime_types import ALL_TYPES
from crimecast.domain.keys import CITY

BAND_Z = NormalDist().inv_cdf(0.9)  # the 80% band's edge: 1.2816 standard deviations
WINDOWS = (1, 2, 3)  # months judged together, each window ending with the newest
KEEP_MONTHS = max(WINDOWS)


@dataclass(frozen=True)
class DriftRule:
    """The alarm's settings: its false-discovery rate, and how many moved area x type cells
    sound it when no aggregate series moved."""

    q: float = 0.01
    min_cells: int = 3


def standardised_error(actual: float, yhat: float, upper: float) -> float | None:
    """z of one month against its forecast's 80% band (None where the band has no width)."""
    centre = math.sqrt(max(yhat, 0.0))
    sigma = (math.sqrt(max(upper, 0.0)) - centre) / BAND_Z
    if not sigma > 0:
        return None
    return (math.sqrt(max(actual, 0.0)) - centre) / sigma


def _two_sided(z: float) -> float:
    return math.erfc(abs(z) / math.sqrt(2))


def series_test(errors: Mapping[str, float]) -> dict[str, Any] | None:
    """The test of one series on its scored months (month -> z): the p-value, the window that
    gave it, that window's months and mean z. None without a score for the newest month."""
    months = sorted(errors)
    if not months:
        return None
    best: dict[str, Any] | None = None
    for width in WINDOWS:
        window = months[-width:]
        if len(window) < width or not _consecutive(window):
            break
        zs = [errors[m] for m in window]
        p = _two_sided(sum(zs) / math.sqrt(width))
        if best is None or p < best["p_window"]:
            best = {"p_window": p, "months": window, "mean_z": sum(zs) / width}
    assert best is not None
    sign = 1.0 if best["mean_z"] > 0 else -1.0
    running = 0
    for month in reversed(months):
        if sign * errors[month] <= BAND_Z or (running and not _consecutive([month, months[-running]])):
            break
        running += 1
    return {**best, "p": min(1.0, best["p_window"] * len(WINDOWS)), "running": running,
            "direction": "above" if sign > 0 else "below"}


def _consecutive(months: Sequence[str]) -> bool:
    index = [int(m[:4]) * 12 + int(m[5:7]) for m in months]
    return all(b - a == 1 for a, b in zip(index, index[1:]))


def benjamini_hochberg(p_values: Mapping[str, float], q: float) -> set[str]:
    """The names whose p-values the Benjamini-Hochberg procedure rejects at rate ``q``."""
    ranked = sorted(p_values.items(), key=lambda item: item[1])
    m = len(ranked)
    cut = 0
    for rank, (_, p) in enumerate(ranked, 1):
        if p <= rank * q / m:
            cut = rank
    return {name for name, _ in ranked[:cut]}


def decide(errors: Mapping[str, Mapping[str, float]], rule: DriftRule = DriftRule()) -> dict[str, Any]:
    """The alarm's decision over every series (label -> month -> z), with its evidence: the
    test, its threshold, the series that moved (furthest first) and a sentence that says it."""
    tests = {label: t for label, e in errors.items() if (t := series_test(e)) is not None}
    moved = benjamini_hochberg({label: t["p"] for label, t in tests.items()}, rule.q)
    ranked = sorted(moved, key=lambda label: (tests[label]["p"], label))
    cells = sum(is_cell(label) for label in moved)
    # Where no aggregate is judged (a deployment of a few cells), a cell stands for itself.
    needed = rule.min_cells if any(not is_cell(label) for label in tests) else 1
    alarm = len(moved) > cells or cells >= needed
    newest = max((t["months"][-1] for t in tests.values()), default=None)
    evidence = {
        "test": ("per series: windows of its last 1-3 months, S = sum of standardised errors / sqrt(months), "
                 "two-sided normal p x 3; across series: Benjamini-Hochberg; sounds on a moved aggregate "
                 "(area total, citywide type, city) or on at least min_cells moved area x type cells"),
        "false_discovery_rate": rule.q, "min_cells": rule.min_cells,
        "series_tested": len(tests), "series_moved": len(moved), "cells_moved": cells, "newest_month": newest,
        "moved": [_moved_record(label, tests[label]) for label in ranked[:50]],
        "summary": summarise(ranked, tests),
    }
    if moved and not alarm:
        evidence["quiet_because"] = (f"only {cells} area x type cell{'s' if cells > 1 else ''} moved; the alarm needs "
                                     f"an area total, a citywide type or the city, or {needed} cells")
    return {"alarm": alarm, "evidence": evidence}


def is_cell(label: str) -> bool:
    """Whether a series label (``AREA:TYPE``) is one area's one type, not an aggregate."""
    area, _, crime_type = label.rpartition(":")
    return area != CITY and crime_type != ALL_TYPES


def _moved_record(label: str, test: dict[str, Any]) -> dict[str, Any]:
    return {"series": label, "direction": test["direction"], "months": test["months"],
            "mean_z": round(test["mean_z"], 2), "p": float(f"{test['p']:.3g}")}


def summarise(moved: Sequence[str], tests: Mapping[str, dict[str, Any]]) -> str:
    """Plain words: which kinds of series moved, which way and for how long, e.g.
    "THEFT rose above its band in 41 of 77 areas for 2 months running"."""
    if not moved:
        return f"No series moved beyond its band more than chance allows ({len(tests)} series tested)."
    groups: dict[tuple[str, str], list[str]] = {}
    for label in moved:
        groups.setdefault((_kind(label), tests[label]["direction"]), []).append(label)
    totals: dict[str, int] = {}
    for label in tests:
        totals[_kind(label)] = totals.get(_kind(label), 0) + 1
    parts = []
    for (kind, direction), labels in sorted(groups.items(), key=lambda item: (-len(item[1]), item[0]))[:4]:
        verb = "rose above" if direction == "above" else "fell below"
        where = kind if kind.endswith("citywide") else f"{kind} in {len(labels)} of {totals[kind]} areas"
        band = "its band" if kind.endswith("citywide") or len(labels) == 1 else "their bands"
        parts.append(f"{where} {verb} {band} {_span(labels, tests)}")
    rest = len(groups) - 4
    more = f"; and {rest} more group{'s' if rest > 1 else ''}" if rest > 0 else ""
    return "; ".join(parts) + more + f" ({len(moved)} of {len(tests)} series moved)."


def _span(labels: Sequence[str], tests: Mapping[str, dict[str, Any]]) -> str:
    """How long a group has been outside: the months running that every one of them was."""
    running = min(tests[label]["running"] for label in labels)
    if running >= 2:
        return f"for {running} months running"
    if running == 1:
        return "in the newest month"
    return f"over its last {max(len(tests[label]['months']) for label in labels)} months"


def _kind(label: str) -> str:
    """What a series is, for a sentence: its type (``ALL``: all crime), citywide or by area."""
    area, _, crime_type = label.rpartition(":")
    name = "all crime" if crime_type == ALL_TYPES else crime_type
    return f"{name} citywide" if area == CITY else name


def merge_errors(before: Mapping[str, Mapping[str, float]], new: Mapping[str, Mapping[str, float]],
                 keep: int = KEEP_MONTHS) -> dict[str, dict[str, float]]:
    """Each series' scored months, the newest ``keep``: a month keeps the error of the first
    forecast it was scored against (the one published before it), never a later model's."""
    merged: dict[str, dict[str, float]] = {}
    for label in set(before) | set(new):
        months = {**new.get(label, {}), **before.get(label, {})}
        merged[label] = {m: months[m] for m in sorted(months)[-keep:]}
    return merged


def unusual(errors: Mapping[str, Mapping[str, float]], rule: DriftRule = DriftRule()) -> set[str]:
    """The series whose newest month is unusual (see :func:`unusual_in_month`)."""
    return unusual_in_month({label: e[max(e)] for label, e in errors.items() if e}, rule)


def unusual_in_month(z_by_series: Mapping[str, float], rule: DriftRule = DriftRule()) -> set[str]:
    """The series whose month was unusual: outside its 80% band and found by the alarm's test
    on that month alone (two-sided p, Benjamini-Hochberg at ``q`` across every series judged
    that month). One month in five falls outside its band by chance; of the months this flags,
    at most a share ``q`` are expected to be chance: the page and ``/alerts`` call unusual
    what the alarm's test finds (the alarm itself also needs an aggregate or several cells)."""
    p_values = {label: _two_sided(z) if abs(z) > BAND_Z else 1.0 for label, z in z_by_series.items()}
    return benjamini_hochberg(p_values, rule.q)


def band_errors(rows: Iterable[Mapping[str, Any]], observed: Mapping[str, float]) -> dict[str, float]:
    """month -> z for the forecast ``rows`` (month, yhat, yhat_upper) whose months were observed."""
    out = {}
    for row in rows:
        month = str(row["month"])
        if month in observed:
            z = standardised_error(float(observed[month]), float(row["yhat"]), float(row["yhat_upper"]))
            if z is not None:
                out[month] = z
    return out
