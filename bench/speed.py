"""Speed of one series: the project's choose + fit + forecast next to the bare
Prophet fit/predict calls it makes, printed as JSON.

Usage: python bench/speed.py [--repeat N]
"""

from __future__ import annotations

import argparse
import statistics
import time

from results import write

from crimecast.domain.keys import SeriesKey
from crimecast.domain.model import CrimeForecaster
from crimecast.domain.series import read_counts
from crimecast.tools.data import real_data_dir as data_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    history = read_counts(data_dir() / "austin_assault_monthly_2001_2023.csv").series(SeriesKey(25, "ASSAULT"))
    CrimeForecaster().fit(history).predict(12)  # warm-up: imports and Stan model load
    totals, prophet, fits = [], [], []
    for _ in range(args.repeat):
        started = time.perf_counter()
        model = CrimeForecaster().fit(history)
        model.predict(12)
        totals.append(time.perf_counter() - started)
        prophet.append(model.timings.prophet_fit_seconds + model.timings.prophet_predict_seconds)
        fits.append(model.timings.fits)
    total, bare = statistics.median(totals), statistics.median(prophet)
    write("speed", {
        "series": "25:ASSAULT", "months": len(history), "repeat": args.repeat,
        "project_seconds": round(total, 4), "prophet_fit_predict_seconds": round(bare, 4),
        "overhead_share": round(total / bare - 1, 3), "prophet_fits_per_series": fits[0],
    })


if __name__ == "__main__":
    main()
