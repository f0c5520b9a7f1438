"""Figures read against last year, months outside their band, and CSV: pure, no I/O.

Staff read every count against the same period a year before: the last 12 complete
months against the 12 before them, the year to date against the same months last year,
and the coming 12 months' forecast against the last 12. A month whose count fell outside
the 80% band forecast for it *before* it happened is unusual; by chance alone one month in
five does.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
import csv
import io
from typing import Any

from crimecast.domain.months import add_months, complete_counts

BAND_LEVEL = 0.8  # the forecasts' interval: 80% of months are meant to fall inside
UNUSUAL_NOTE = ("The likely range holds 8 months in 10: by chance alone, about 1 month in 5 falls outside it. "
                "A month is called unusual only when it is further outside than chance explains across every "
                "series checked that month: the same test that sounds the retraining alarm.")


def change(now: float | None, before: float | None) -> dict[str, Any]:
    """``now`` against ``before``: both, the difference and the % change (None where not defined)."""
    if now is None or before is None:
        return {"now": now, "before": before, "change": None, "pct": None}
    diff = now - before
    return {"now": round(now, 2), "before": round(before, 2), "change": round(diff, 2),
            "pct": round(100 * diff / before, 1) if before else None}


def _window(counts: dict[str, float], last: str, n: int) -> float | None:
    months = [add_months(last, -i) for i in range(n)]
    if any(m not in counts for m in months):
        return None
    return sum(counts[m] for m in months)


def year_comparison(history: Sequence[dict[str, Any]], forecast: Sequence[dict[str, Any]],
                    data_through: str | None) -> dict[str, Any]:
    """Last 12 complete months vs the 12 before, year to date vs the same months a year before,
    and the forecast for the 12 months after ``data_through`` vs the last 12.

    Only complete months count (``partial`` rows are left out); a window with a month missing
    has no total (None), never a total over fewer months.
    """
    counts = complete_counts(history)
    if not data_through or data_through not in counts:
        return {"data_through": data_through, "last_12": None, "year_to_date": None, "next_12": None}
    last = data_through
    last_12 = _window(counts, last, 12)
    year_ago = add_months(last, -12)
    ytd_months = int(last[5:7])
    ahead = [f for f in forecast if str(f["month"]) > last][:12]
    next_total = sum(float(f["yhat"]) for f in ahead) if len(ahead) == 12 else None
    return {
        "data_through": last,
        "last_12": {"from": add_months(last, -11), "to": last, "before_from": add_months(last, -23), "before_to": year_ago,
                    **change(last_12, _window(counts, year_ago, 12))},
        "year_to_date": {"from": f"{last[:4]}-01", "to": last, "before_from": f"{year_ago[:4]}-01", "before_to": year_ago,
                         **change(_window(counts, last, ytd_months), _window(counts, year_ago, ytd_months))},
        "next_12": {"from": ahead[0]["month"] if ahead else None, "to": ahead[-1]["month"] if ahead else None,
                    **change(next_total, last_12)},
    }


def same_month_last_year(history: Sequence[dict[str, Any]], month: str) -> float | None:
    """The complete count of the month a year before ``month``, if the history has it."""
    return complete_counts(history).get(add_months(month, -12))


def outside_band(count: float, lower: float, upper: float) -> str | None:
    """"above" or "below" when ``count`` fell outside [lower, upper], else None."""
    if count > upper:
        return "above"
    if count < lower:
        return "below"
    return None


def band_distance(count: float, lower: float, upper: float) -> float:
    """How far outside its band a count fell, relative to the edge it crossed (0 inside)."""
    if count > upper:
        return (count - upper) / max(upper, 1.0)
    if count < lower:
        return (lower - count) / max(lower, 1.0)
    return 0.0


def rank_unusual(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows with a ``direction`` (above/below), furthest outside first, numbered from 1 (``rank``)."""
    ranked = sorted((r for r in rows if r.get("direction")), key=lambda r: (-r["distance"], r["series"]))
    return [{**r, "rank": n} for n, r in enumerate(ranked, 1)]


# What a spreadsheet may read as the start of a formula (OWASP, "CSV Injection"): a text cell
# starting so gets a leading apostrophe. TAB and CR count: some spreadsheets skip them first.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
SIGNS = ("+", "-")  # also the start of a number, which is left as it is


def to_csv(columns: Sequence[str], rows: Iterable[dict[str, Any]]) -> str:
    """RFC 4180 CSV (CRLF line ends) with a header row; None is an empty cell; a text cell
    starting with = + - @ TAB or CR (``FORMULA_STARTS``), unless it is a signed number, is
    quoted with an apostrophe, so a spreadsheet never runs it."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    return out.getvalue()


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value[:1] in FORMULA_STARTS and not (value[:1] in SIGNS and _numeric(value)):
        return "'" + value
    return value


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
