"""Coverage of the model's 80% interval on real series, for several half-widths (in
sqrt-count space), printed as JSON: how ``ModelSettings.interval_k`` is checked on the 2026
files (``bench/accuracy.py`` reports coverage per level with the chosen value).

Usage: python bench/interval.py [--step 3]  (every 3rd series of the area and type files)
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import numpy as np
import pandas as pd
from results import write

from crimecast.domain.model import CrimeForecaster, ModelSettings
from crimecast.domain.parallel import StderrProgress, map_processes
from crimecast.domain.series import read_many
from crimecast.tools.data import real_data_dir as data_dir

SCALES = (0.9, 1.0, 1.1, 1.2, 1.3, 1.5)
ORIGINS = [pd.Period(f"{year}-12", "M") for year in range(2015, 2025)]


def _coverages(task: tuple[pd.Series, pd.Period]) -> list[float]:
    series, origin = task
    train, test = series[series.index <= origin], series[series.index > origin].iloc[:12].to_numpy(dtype=float)
    base = CrimeForecaster(replace(ModelSettings(), interval_k=1.0)).fit(train).predict(len(test))
    root = np.sqrt(base["yhat"].to_numpy())
    half = np.sqrt(base["yhat_upper"].to_numpy()) - root  # the k = 1 half-width
    return [float(np.mean((test >= np.maximum(root - s * half, 0) ** 2) & (test <= (root + s * half) ** 2))) for s in SCALES]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--step", type=int, default=3)
    args = parser.parse_args()
    data = data_dir()
    counts = read_many([data / "area_monthly_all_types_2001_2026.csv", data / "citywide_monthly_by_type_2001_2026.csv"])
    tasks = [(counts.series(k), o) for k in counts.keys()[:: args.step] for o in ORIGINS]
    results = np.array(map_processes(_coverages, tasks, progress=StderrProgress("interval")))
    write("interval", {"step": args.step, "forecasts": len(tasks), "nominal": 0.8,
                      "coverage_by_interval_k": {str(s): round(float(c), 3) for s, c in zip(SCALES, results.mean(axis=0))}})


if __name__ == "__main__":
    main()
