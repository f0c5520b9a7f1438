"""Each successful ingest scores the champion on the months it brought in."""

from __future__ import annotations

import json

import pandas as pd

from crimecast.jobs import retrain
from crimecast.tools.cli import main
from tests.conftest import seasonal_series, tidy_frame


def _write(path, months: int, degrade: bool) -> None:
    frames = []
    for area, level in {25: 80, 8: 300, 24: 150}.items():
        frame = tidy_frame(seasonal_series("2018-01", months, level=level, seed=area), area, "THEFT")
        if degrade:
            frame.loc[frame.index[72:], "count"] *= 3
        frames.append(frame)
    pd.concat(frames, ignore_index=True).to_csv(path, index=False)


def test_an_ingest_with_degraded_months_starts_a_retrain(aws, tmp_path, capsys) -> None:
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    _write(first, 72, degrade=False)
    _write(second, 78, degrade=True)
    assert main(["ingest", "--backfill", "--from-file", str(first)]) == 0
    capsys.readouterr()
    assert retrain.run_locally(aws, workers=1)["promoted"]
    assert main(["ingest", "--backfill", "--from-file", str(second)]) == 0
    run = json.loads(capsys.readouterr().out)
    live = run["detail"]["live_evaluation"]
    assert live["series_evaluated"] >= 3 and live["retrain"]["started"] is True
