"""Area x type series with a gap (the 2001-2018 history joined to the 2024 export): stored and read
back with their gap, trained on their known months, forecast from the month after their data,
served with what they lack said plainly; the live evaluation never scores a month of the gap."""

from __future__ import annotations

from datetime import date
import json

import numpy as np
import pandas as pd
import pytest

from crimecast import settings
from crimecast.adapters.series_store import DRIFT_ERRORS
from crimecast.domain.keys import SeriesKey
from crimecast.domain.months import month_range
from crimecast.domain.series import read_many
from crimecast.jobs import counts as stored_counts
from crimecast.jobs import forecasts, live_evaluation, retrain
from crimecast.jobs.counts import current_manifest, load_counts, store_counts
from local import model_cache
from tests.conftest import seasonal_series, tidy_frame

PAST = date(2030, 1, 1)
AUSTIN_ASSAULT = SeriesKey(25, "ASSAULT")
GAP_MONTHS = month_range("2018-11", "2023-12")


def _files(folder, with_2024: bool = True) -> list:
    """Totals to 2026-04, and the Loop's (32) ASSAULT too; ASSAULT in Austin (25, spelt as the
    renamed type) and the Near North Side (8) 2015-01..2018-10; with_2024: Austin's (not area
    8's) in 2024, at a higher level than before."""
    totals, history, recent = folder / "totals.csv", folder / "history.csv", folder / "recent.csv"
    pd.concat([tidy_frame(seasonal_series("2015-01", 136, level=900, seed=1), 25, "ALL"),
               tidy_frame(seasonal_series("2015-01", 136, level=80, seed=7), 32, "ASSAULT"),
               tidy_frame(seasonal_series("2015-01", 136, level=700, seed=2), 8, "ALL"),
               tidy_frame(seasonal_series("2015-01", 136, level=9000, seed=3), None, "ALL")]).to_csv(totals, index=False)
    pd.concat([tidy_frame(seasonal_series("2015-01", 46, level=100, seed=4), 25, "ASSAULT"),
               tidy_frame(seasonal_series("2015-01", 46, level=60, seed=5), 8, "ASSAULT")]).to_csv(history, index=False)
    tidy_frame(seasonal_series("2024-01", 12, level=150, seed=6), 25, "ASSAULT").to_csv(recent, index=False)
    return [totals, history, recent] if with_2024 else [totals, history]


@pytest.fixture
def trained(aws, tmp_path):
    store_counts(aws, read_many(_files(tmp_path), PAST))
    summary = retrain.run_locally(aws, workers=1)
    assert summary["promoted"] and summary["series_failed"] == 0
    return summary


def test_the_stored_counts_keep_the_gap_and_the_model_cache_tells_it_apart(aws, tmp_path) -> None:
    store_counts(aws, read_many(_files(tmp_path), PAST))
    manifest = current_manifest(aws)
    assert manifest["series_gaps"] == {"25:ASSAULT": [["2018-11", "2023-12"]]}
    assert manifest["series_ends"]["25:ASSAULT"] == "2024-12" and manifest["series_ends"]["8:ASSAULT"] == "2018-10"
    counts = load_counts(aws)
    series = counts.series(AUSTIN_ASSAULT)
    assert series.loc["2018-11":"2023-12"].isna().all() and series.loc["2024-01":].notna().all()
    assert counts.data_end(AUSTIN_ASSAULT) == pd.Period("2024-12", "M")
    with_gap = model_cache.fingerprint(aws)
    manifest["series_gaps"] = {}
    aws.blobs.put_json(stored_counts.COUNTS_KEY, manifest)  # the same rows, the gap forgotten
    assert model_cache.fingerprint(aws) != with_gap
    assert load_counts(aws).series(AUSTIN_ASSAULT).loc["2018-11":"2023-12"].eq(0).all()  # what a gap is not


def test_an_ingest_keeps_the_gap_outside_its_window_only() -> None:
    pointer = {"series_gaps": {"25:ASSAULT": [["2018-11", "2023-12"]], "8:THEFT": [["2020-01", "2020-03"]]}}
    assert stored_counts._carried_gaps(pointer, ("2026-04", "2026-05")) == pointer["series_gaps"]
    assert stored_counts._carried_gaps(pointer, ("2020-01", "2020-12")) == {"25:ASSAULT": [["2018-11", "2019-12"], ["2021-01", "2023-12"]]}
    assert stored_counts._carried_gaps(None, None) == {}


def test_a_series_with_a_gap_forecasts_from_2025_with_no_gap_month_in_its_history(aws, trained) -> None:
    answer = forecasts.prediction(aws, "Austin", "ASSAULT", 12)
    assert answer["data_through"] == "2024-12" and answer["forecast"][0]["month"] == "2025-01"
    assert answer["data_gaps"] == [{"from": "2018-11", "to": "2023-12"}]
    assert answer["data_note"] == "data through December 2024; no data 2018-11 to 2023-12"
    months = [r["month"] for r in answer["history"]]
    assert not set(months) & set(GAP_MONTHS) and months[-1] == "2024-12" and "2018-10" in months
    bands = np.array([[f["yhat_lower"], f["yhat"], f["yhat_upper"]] for f in answer["forecast"]])
    assert np.isfinite(bands).all() and (bands[:, 0] <= bands[:, 1]).all() and (bands[:, 1] < bands[:, 2]).all()
    assert 120 < bands[:, 1].mean() < 190  # the 2024 level (150), not one dragged down by 62 zero months
    # backtested where it can be scored: before the gap, the window across it on its known months
    assert answer["metrics"]["origins"] == ["2016-12", "2017-12"] and answer["metrics"]["model"]["mase"] is not None
    assert answer["comparison"]["last_12"]["change"] is None  # 2023 is unknown: no change against it
    accuracy = forecasts.accuracy(aws, "25", "ASSAULT")
    assert accuracy["data_gaps"] == answer["data_gaps"] and accuracy["data_note"] == answer["data_note"]
    rows = forecasts.prediction_csv(answer).splitlines()
    assert rows[0].endswith(",data_through,no_data") and rows[1].endswith(",2024-12,2018-11 to 2023-12")
    # a series with no data after the gap keeps its old end, and nothing says it has a gap
    near_north = forecasts.prediction(aws, "8", "ASSAULT", 3)
    assert near_north["data_through"] == "2018-10" and near_north["forecast"][0]["month"] == "2018-11"
    assert near_north["data_gaps"] == [] and near_north["data_note"] == "data through October 2018"


def test_the_map_ranks_only_forecasts_made_from_data_to_the_same_month_and_says_why_not_the_others(aws, trained) -> None:
    """ASSAULT: the Loop's data run to 2026-04, Austin's to 2024-12 (a gap before), the Near North
    Side's to 2018-10. Each map shows the areas of one data end; the others are listed with why."""
    newest = forecasts.area_map(aws, "ASSAULT")
    assert newest["month"] == "2026-05" and [r["community_area"] for r in newest["areas"]] == [32]
    assert newest["data_gaps"] == [] and newest["data_note"] == "data through April 2026"
    reasons = {m["community_area"]: m["reason"] for m in newest["missing"]}
    assert reasons[25] == ("its data end in 2024-12, the other areas' in 2026-04: its forecast (2025-01..2026-12) "
                           "is not ranked with theirs")  # it reaches 2026-05, but 17 months ahead
    assert reasons[8].startswith("its data end in 2018-10,")
    austin = forecasts.area_map(aws, "ASSAULT", "2025-01")
    assert [r["community_area"] for r in austin["areas"]] == [25] and austin["data_through"] == "2024-12"
    assert austin["data_note"] == "data through December 2024; no data 2018-11 to 2023-12"
    assert austin["areas"][0]["data_gaps"] == [{"from": "2018-11", "to": "2023-12"}]
    older = forecasts.area_map(aws, "ASSAULT", "2019-01")
    assert [r["community_area"] for r in older["areas"]] == [8] and older["data_note"] == "data through October 2018"
    csv = forecasts.map_csv(austin).splitlines()
    assert csv[0].split(",")[9:11] == ["data_through", "no_data"]
    assert ",2024-12,2018-11 to 2023-12," in next(line for line in csv if line.startswith("25,"))


def test_the_live_evaluation_never_scores_a_month_of_the_gap(aws, tmp_path) -> None:
    """A champion trained before the 2024 export arrived forecast 2018-11..2020-10: months the
    joined counts hold as unknown. They are not scored (as zeros they would be, and badly)."""
    store_counts(aws, read_many(_files(tmp_path, with_2024=False), PAST))
    version = retrain.run_locally(aws, workers=1)["version"]
    store_counts(aws, read_many(_files(tmp_path), PAST))
    counts = load_counts(aws)
    detail, _ = live_evaluation.score_champion(aws, version, counts, settings.load(settings.LiveThreshold), "run-gap")
    assert forecasts.accuracy(aws, "25", "ASSAULT", version)["live"] is None
    zeros = {m: (0.0 if m in GAP_MONTHS else v) for m, v in
             {str(m): float(v) for m, v in counts.series(AUSTIN_ASSAULT).fillna(0).items()}.items()}
    payload = json.loads(aws.series.get("25:ASSAULT", version)["payload"])
    assert live_evaluation.live_accuracy(payload, zeros)["months"][0] == "2018-11"  # what zeros would have scored
    nan = {str(m): float(v) for m, v in counts.series(AUSTIN_ASSAULT).items()}
    assert live_evaluation.live_accuracy(payload, nan) is None
    kept = aws.series.get(DRIFT_ERRORS, DRIFT_ERRORS)
    assert not (json.loads(kept["payload"]) if kept else {}).get("25:ASSAULT")  # nor judged by the drift alarm
    assert detail["series_evaluated"] == 0
