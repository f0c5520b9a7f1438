"""Accuracy on the city's real data, printed as JSON.

1. The seed's showcase: ASSAULT in Austin, trained to 2022-12, tested on 2023 (whose
   December is a partial month), scored on 12 and on the 11 complete months.
2. The yearly backtest of that series, origins 2015-12..2021-12, 12 months ahead.
3. Every other real series (77 area totals, citywide types), origins 2015-12..2023-12.

Usage: python bench/accuracy.py [--quick] [--workers N]
"""

from __future__ import annotations

import argparse

import pandas as pd
from results import write

from crimecast.domain import backtest, metrics
from crimecast.domain.keys import SeriesKey
from crimecast.domain.model import CrimeForecaster, seasonal_naive, seed_prophet
from crimecast.domain.parallel import StderrProgress
from crimecast.domain.series import read_counts, read_many
from crimecast.tools.data import real_data_dir as data_dir

AUSTIN_ASSAULT = SeriesKey(25, "ASSAULT")
SEED_PUBLISHED = {"mae": 12.06, "rmse": 17.28, "r2": 0.40}


def _figures(actual, predicted) -> dict[str, float]:
    return {"mae": round(metrics.mae(actual, predicted), 2), "rmse": round(metrics.rmse(actual, predicted), 2),
            "r2": round(metrics.r2(actual, predicted), 3)}


def showcase() -> dict:
    data = data_dir()
    counts = read_counts(data / "austin_assault_monthly_2001_2023.csv")
    test = read_counts(data / "austin_assault_monthly_2023_reference_test.csv").series(AUSTIN_ASSAULT, include_partial=True)
    end = pd.Period("2022-12", "M")
    history = counts.series(AUSTIN_ASSAULT).loc[:end]
    seed_history = counts.series(AUSTIN_ASSAULT, all_history=True).loc[:end]
    published = pd.read_csv(data / "austin_assault_2023_reference_prophet_predictions.csv")["yhat"].to_numpy()
    forecasts = {
        "seed_published_predictions": published,
        "seed_prophet_rerun": seed_prophet(seed_history, 12)["yhat"].to_numpy(),
        "model": CrimeForecaster().fit(history).predict(12)["yhat"].to_numpy(),
        "seasonal_naive": seasonal_naive(history, 12),
    }
    actual = test.to_numpy(dtype=float)
    return {
        "series": "25:ASSAULT (Austin), train to 2022-12, test 2023-01..12 (2023-12 partial: 31 reports)",
        "seed_published_figures": SEED_PUBLISHED,
        "twelve_months": {k: _figures(actual, f) for k, f in forecasts.items()},
        "eleven_complete_months": {k: _figures(actual[:11], f[:11]) for k, f in forecasts.items()},
        "december_2023": {"actual_partial": float(actual[-1]), **{k: round(float(f[-1]), 1) for k, f in forecasts.items()}},
    }


def _backtest(counts, keys, origins: str, workers: int, label: str) -> dict:
    tasks = backtest.plan(counts, keys, backtest.parse_origins(origins), 12)
    return backtest.run(tasks, workers, StderrProgress(label))["summary"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="every 4th area and three origins only")
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()
    data = data_dir()
    austin = read_counts(data / "austin_assault_monthly_2001_2023.csv")
    yearly = ",".join(f"{y}-12" for y in range(2015, 2022))
    others = read_many([data / "area_monthly_all_types_2001_2026.csv", data / "citywide_monthly_by_type_2001_2026.csv"])
    areas = [k for k in others.keys() if k.community_area is not None]
    types = [k for k in others.keys() if k.community_area is None]
    origins = "2017-12,2020-12,2023-12" if args.quick else ",".join(f"{y}-12" for y in range(2015, 2024))
    result = {
        "showcase": showcase(),
        "austin_assault_yearly_backtest": _backtest(austin, [AUSTIN_ASSAULT], yearly, args.workers, "austin"),
        "area_totals": _backtest(others, areas[::4] if args.quick else areas, origins, args.workers, "areas"),
        "citywide_types": _backtest(others, types, origins, args.workers, "types"),
    }
    write("accuracy_quick" if args.quick else "accuracy", result)


if __name__ == "__main__":
    main()
