"""Each successful ingest scores the champion on the months it brought in."""

from __future__ import annotations

from dataclasses import replace
import json
from pathlib import Path

import pandas as pd

from crimecast.adapters.series_store import SeriesStore
from crimecast.jobs import ingest, pipeline, retrain, runs
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


def _champion_then_two_more_months(aws, tmp_path) -> Path:
    """Six years ingested and a champion trained on them; the file that brings two more months."""
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    _write(first, 72, degrade=False)
    _write(second, 74, degrade=False)
    pipeline.ingest_now(aws, "test", ingest.FileSource(first), mode="backfill")
    assert retrain.run_locally(aws, workers=1)["promoted"]
    return second


def test_the_lambda_worker_evaluates_once_and_a_repeated_event_does_nothing_more(aws, tmp_path) -> None:
    second = _champion_then_two_more_months(aws, tmp_path)
    queued = ingest.open_run(aws, "test", mode="backfill", source_label="file:second.csv")
    view = pipeline.ingest_worker(aws, queued["run_id"], source=ingest.FileSource(second))
    assert view["status"] == "succeeded" and view["detail"]["live_evaluation"]["series_evaluated"] >= 3
    again = pipeline.ingest_worker(aws, queued["run_id"], source=ingest.FileSource(second))  # delivered twice
    assert again == runs.get_run(aws, queued["run_id"])
    assert len(runs.recent_runs(aws, "evaluate")) == 1


def test_before_any_model_an_ingest_says_there_is_nothing_to_score(aws, tmp_path) -> None:
    first = tmp_path / "first.csv"
    _write(first, 72, degrade=False)
    view = pipeline.ingest_now(aws, "test", ingest.FileSource(first), mode="backfill")
    assert view["status"] == "succeeded" and "nothing to score" in view["detail"]["live_evaluation"]["skipped"]
    assert runs.recent_runs(aws, "evaluate") == []  # no evaluation run left queued


class BrokenSeries(SeriesStore):
    def query_type_version(self, type_version: str) -> list:
        raise RuntimeError("AccessDeniedException: not authorized to perform dynamodb:Query on arn:aws:dynamodb:...")


def test_a_failing_evaluation_leaves_the_published_ingest_standing(aws, tmp_path) -> None:
    second = _champion_then_two_more_months(aws, tmp_path)
    broken = replace(aws, series=BrokenSeries(aws.series.table_name))  # e.g. a role without the grant
    view = pipeline.ingest_now(broken, "test", ingest.FileSource(second), mode="backfill")
    assert view["status"] == "succeeded" and "failed" in view["detail"]["live_evaluation"]["error"]
    assert "arn:" not in json.dumps(view)  # the error is logged, not shown
    (evaluation,) = runs.recent_runs(aws, "evaluate")
    assert evaluation["status"] == "failed"
