"""`make demo`'s second start: the champion an earlier start trained, written back whole."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from crimecast.adapters import aws as aws_clients
from crimecast.domain.series import counts_from_tidy
from crimecast.jobs import forecasts, retrain
from crimecast.jobs.counts import store_counts
from local import model_cache
from tests.conftest import seasonal_series, tidy_frame

PAST = date(2030, 1, 1)


@pytest.fixture
def trained(aws, tmp_path, monkeypatch):
    monkeypatch.setenv(model_cache.CACHE_ENV, str(tmp_path / "cache"))
    thin = tidy_frame(seasonal_series("2018-01", 72, level=80), 24, "THEFT")
    thin.loc[thin.index[:-10], "count"] = 0  # ten months with reports: skipped, with its reason
    frames = [tidy_frame(seasonal_series("2018-01", 72, level=80), 25, "THEFT"),
              tidy_frame(seasonal_series("2018-01", 72, level=300, seed=3), 8, "THEFT"), thin]
    store_counts(aws, counts_from_tidy(pd.concat(frames, ignore_index=True), as_of=PAST))
    summary = retrain.run_locally(aws, workers=1)
    key = model_cache.fingerprint(aws)
    model_cache.save(aws, key, summary["version"])
    return key, summary["version"]


def _forget_models(stores) -> None:
    """What a restarted stack has: the counts, no model (its embedded AWS kept nothing)."""
    table = aws_clients.table(stores.series.table_name)
    for item in table.scan()["Items"]:
        table.delete_item(Key={"series": item["series"], "version": item["version"]})
    stores.blobs.delete_keys(stores.blobs.list_keys("models/"))


def test_a_restart_on_the_same_data_and_code_serves_the_same_models(aws, trained) -> None:
    key, version = trained
    before = (forecasts.prediction(aws, "25", "THEFT", 3), forecasts.area_map(aws, "THEFT"), forecasts.catalog(aws))
    _forget_models(aws)
    with pytest.raises(Exception, match="no model"):
        forecasts.champion_version(aws)
    assert model_cache.restore(aws, key) == version
    after = (forecasts.prediction(aws, "25", "THEFT", 3), forecasts.area_map(aws, "THEFT"), forecasts.catalog(aws))
    assert after[0]["forecast"] == before[0]["forecast"] and after[1]["areas"] == before[1]["areas"]
    assert after[2]["skipped"] == before[2]["skipped"] and any(s["series"] == "24:THEFT" for s in after[2]["skipped"])
    assert aws.blobs.list_keys(f"models/{version}/")  # the model files too


def test_other_data_or_code_finds_no_cached_models(aws, trained) -> None:
    key, _ = trained
    extra = tidy_frame(seasonal_series("2018-01", 73, level=80), 25, "THEFT")  # one month more
    store_counts(aws, counts_from_tidy(extra, as_of=PAST))
    assert model_cache.fingerprint(aws) != key and model_cache.restore(aws, model_cache.fingerprint(aws)) is None
