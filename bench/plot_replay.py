"""Chart of a replay result: the live error per month of the service and of the three fixed
policies, with the months the drift alarm sounded and the retrains that were promoted.

Reads bench/results/<name>.json (written by bench/replay.py) and writes docs/img/<name>.svg;
with ``--markdown``, also prints the issue's targets as a Markdown table for docs/, each figure
a link to where it sits in the result file (as tests/infra/test_figures.py checks them).

Usage:
    python bench/plot_replay.py replay_97
    python bench/plot_replay.py bench/results/replay_97.json --out docs/img/replay_97.svg --markdown
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
import sys
from typing import Any

REPO = Path(__file__).resolve().parents[1]
LINES = {  # policy -> (label, colour, width)
    "service": ("service (schedule + alarm), as deployed", "#1b5e20", 2.0),
    "schedule": ("monthly schedule alone", "#1565c0", 1.2),
    "alarm": ("alarm alone", "#ef6c00", 1.2),
    "never": ("never retrained", "#9e9e9e", 1.2),
}


# The targets each committed replay is held to beyond the common ones (minutes: its time limit;
# alarms: the most alarm months allowed), as the live loop's specification sets them.
LIMITS: dict[str, dict[str, int]] = {"replay_97": {"minutes": 30}, "replay_city": {"minutes": 120, "alarms": 2}}


def result_path(name_or_path: str) -> Path:
    path = Path(name_or_path)
    return path if path.suffix == ".json" else REPO / "bench" / "results" / f"{name_or_path}.json"


def draw(result: dict[str, Any], out: Path) -> Path:
    """The chart of ``result`` (a replay result file's content) written to ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.patches import Patch
    import matplotlib.pyplot as plt

    figures = result["figures"]
    months = figures["months"]
    x = list(range(len(months)))
    fig, ax = plt.subplots(figsize=(11, 4.8))
    for n, month in enumerate(months):
        if month["alarm"]:
            ax.axvspan(n - 0.5, n + 0.5, color="#ffcdd2", lw=0)
    for policy, (label, colour, width) in LINES.items():
        values = [m["live"][policy]["mase"] for m in months]
        ax.plot(x, [float("nan") if v is None else v for v in values], color=colour, lw=width, label=label)
    top = max(v for m in months for p in LINES if (v := m["live"][p]["mase"]) is not None)
    promoted = [n for n, m in enumerate(months) if m.get("promoted")]
    refused = [n for n, m in enumerate(months) if not m.get("promoted")]
    ax.plot(promoted, [top * 1.06] * len(promoted), "|", color="#1b5e20", ms=7, label="a retrain promoted")
    ax.plot(refused, [top * 1.06] * len(refused), "x", color="#b71c1c", ms=4, label="no retrain promoted")
    handles = [*ax.get_legend_handles_labels()[0], Patch(color="#ffcdd2", label="drift alarm sounded")]
    ticks = [n for n, m in enumerate(months) if m["month"].endswith("-01")]
    ax.set_xticks(ticks, [months[n]["month"][:4] for n in ticks])
    ax.set_xlim(-0.5, len(months) - 0.5)
    ax.set_ylim(0, top * 1.12)
    ax.set_ylabel("live MASE of the month (mean over series)")
    summary = figures["summary"]
    ax.set_title(f"{result['benchmark']}: {figures['series']} series, {summary['from']} to {summary['to']}; "
                 f"alarm in {len(summary['alarm_months'])} of {summary['months']} months", fontsize=10)
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.08), fontsize=8, ncol=4, frameon=False)
    ax.grid(axis="y", color="#eeeeee")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, metadata={"Date": None})  # no timestamp: the same result draws the same file
    plt.close(fig)
    return out


def _met(value: bool | None) -> str:
    return {True: "met", False: "**not met**", None: ""}[value]


def markdown(result: dict[str, Any], name: str) -> str:
    """The replay's targets and figures as a Markdown table, each number linked to its place in the file."""
    figures = result["figures"]
    summary, targets = figures["summary"], figures["summary"]["targets"]

    def link(path: str, form: str = "{}", under: str = "summary/") -> str:
        value: Any = figures
        for key in f"{under}{path}".split("/"):
            value = value[key]
        return f"[{form.format(value)}](../bench/results/{name}.json#{under}{path})"

    def versus(path: str) -> str:
        return f"{link(f'{path}/service', '{:.3f}')} vs {link(f'{path}/schedule', '{:.3f}')}"

    after = targets["service_not_worse_than_schedule_12_months_after"]
    limits = LIMITS.get(name, {})
    alarms, months = len(summary["alarm_months"]), summary["months"]
    if "alarms" in limits:
        listed = f" ({', '.join(summary['alarm_months'])})" if alarms else ""
        alarm_row = (f"at most {limits['alarms']} alarm months", f"{alarms}{listed} of {link('months')} months",
                     alarms <= limits["alarms"])
    else:
        alarm_row = ("alarm in at most a quarter of the months",
                     f"{alarms} of {link('months')} months, {link('alarm_share', '{:.1%}')}",
                     targets["alarm_in_at_most_a_quarter_of_months"])
    rows = [
        alarm_row,
        *((("at most 1 alarm in the 14 calm months 2019-01..2020-02", f"{link('calm_alarms')} of {link('calm_months')}",
            targets["at_most_1_alarm_in_the_calm_months"]),) if targets["at_most_1_alarm_in_the_calm_months"] is not None else ()),
        *((("first alarm by the evaluation of 2020-04", f"the evaluation of {summary['first_alarm_from_covid']}",
            targets["first_alarm_by_2020_04"]),) if targets["first_alarm_by_2020_04"] is not None else ()),
        ("service not worse than the monthly schedule alone (mean live MASE)", versus("live_mase"),
         targets["service_not_worse_than_schedule"]),
        *((f"the same over the 12 months from the {event.replace('_', ' ')} break",
           versus(f"live_mase_12_months_after/{event}"), met) for event, met in after.items()),
        *((("(reconciliation's part: the monthly schedule's forecasts as the model made them, not made to add up)",
            link("live_mase/schedule_unreconciled", "{:.3f}"), None),) if "schedule_unreconciled" in summary["live_mase"] else ()),
        (f"within {limits.get('minutes', 30)} minutes on this 2-core machine",
         f"the stack {link('stack_s', '{:.0f} s', '')} + the fixed policies {link('policies_s', '{:.0f} s', '')}"
         + (f" + reconciling them {link('reconcile_policies_s', '{:.0f} s', '')}" if "reconcile_policies_s" in figures else ""),
         figures["stack_s"] + figures["policies_s"] + figures.get("reconcile_policies_s", 0) <= 60 * limits.get("minutes", 30)),
        ("(retrains and promotions)",
         f"{link('retrains/schedule')} scheduled, {link('retrains/alarm')} by the alarm; a new version served "
         f"after {link('promotions')} of {months} months", None),
    ]
    lines = ["| Target | Measured | |", "|---|---|---|", *(f"| {t} | {v} | {_met(m)} |" for t, v, m in rows)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("result", help="a result name (bench/results/<name>.json) or a path to one")
    parser.add_argument("--out", type=Path, default=None, help="default docs/img/<name>.svg")
    parser.add_argument("--markdown", action="store_true", help="print the targets as a Markdown table for docs/")
    args = parser.parse_args(argv)
    path = result_path(args.result)
    result = json.loads(path.read_text())
    out = draw(result, args.out or REPO / "docs" / "img" / f"{path.stem}.svg")
    print(out, file=sys.stderr)
    if args.markdown:
        print(markdown(result, path.stem))
    return 0


if __name__ == "__main__":
    sys.exit(main())
