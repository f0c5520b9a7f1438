"""The seed specification's tests for ChicagoCrimePredictor (section 4), kept as written
there, with pytest-mock where the seed mocks."""

from pathlib import Path

import pandas as pd
from prophet import Prophet
import pytest

from crimecast.tools.predictor import ChicagoCrimePredictor
from tests.conftest import seasonal_series, tidy_frame


@pytest.fixture
def mock_df_crime() -> pd.DataFrame:
    frame = tidy_frame(seasonal_series("2015-01", 84), 25, "ASSAULT")
    frame.loc[len(frame)] = ["2022-01", "25", "ASSAULT", 12]  # the export ended early in January
    return frame.assign(partial_month=[False] * 84 + [True])


@pytest.fixture
def mock_df_socio() -> pd.DataFrame:
    return pd.DataFrame({"Community Area Number": [25], "COMMUNITY AREA NAME": ["Austin"], "HARDSHIP INDEX": [73]})


def test_init() -> None:
    predictor = ChicagoCrimePredictor(months_pred=6, data_dir="data")
    assert predictor._month_pred == 6
    assert predictor.data_dir == Path("data")
    assert predictor.model is None


def test_load_df_crimes(mocker, mock_df_crime: pd.DataFrame) -> None:
    read = mocker.patch("pandas.read_csv", return_value=mock_df_crime)
    result = ChicagoCrimePredictor(data_dir="data").load_df_crimes()
    pd.testing.assert_frame_equal(result, mock_df_crime)
    assert Path(read.call_args.args[0]).parent == Path("data")


def test_load_df_socio(mocker, mock_df_socio: pd.DataFrame) -> None:
    mocker.patch("pandas.read_csv", return_value=mock_df_socio)
    pd.testing.assert_frame_equal(ChicagoCrimePredictor().load_df_socio(), mock_df_socio)


def test_return_data(mocker, mock_df_crime: pd.DataFrame) -> None:
    mocker.patch("pandas.read_csv", return_value=mock_df_crime)
    train, test = ChicagoCrimePredictor(months_pred=12).return_data("ASSAULT", "Austin")
    assert isinstance(train, pd.DataFrame) and isinstance(test, pd.DataFrame)
    assert list(train.columns) == ["ds", "y"] and len(test) == 12 and len(train) == 72
    assert test["ds"].iloc[-1] == pd.Timestamp("2021-12-01")  # the partial January is in neither


def test_model_train(mocker) -> None:
    fit = mocker.patch.object(Prophet, "fit")
    predictor = ChicagoCrimePredictor()
    history = seasonal_series("2015-01", 60)
    predictor.model_train(pd.DataFrame({"ds": history.index.to_timestamp(), "y": history.to_numpy()}))
    assert isinstance(predictor.model, Prophet)
    fit.assert_called_once()


def test_model_predict() -> None:
    history = seasonal_series("2015-01", 48)
    pretrained = Prophet(yearly_seasonality=True, daily_seasonality=False)
    pretrained.fit(pd.DataFrame({"ds": history.index.to_timestamp(), "y": history.to_numpy()}))
    predictor = ChicagoCrimePredictor(months_pred=6)
    predictor.model = pretrained
    forecast, predictions = predictor.model_predict()
    assert not predictions.empty and len(predictions) == 6
    assert predictions["ds"].iloc[0] == pd.Timestamp("2019-01-01")
    assert len(forecast) == 48 + 6


def test_train_predict_evaluate_on_the_project_model() -> None:
    history = seasonal_series("2015-01", 72, level=150)
    frame = pd.DataFrame({"ds": history.index.to_timestamp(), "y": history.to_numpy(dtype=float)})
    predictor = ChicagoCrimePredictor(months_pred=12)
    train, test = frame.iloc[:-12], frame.iloc[-12:]
    predictor.model_train(train)
    _, predictions = predictor.model_predict()
    assert list(predictions["ds"]) == list(test["ds"])
    mae, rmse, r2 = predictor.model_evaluation(test, predictions)
    assert 0 < mae <= rmse < 30  # Poisson noise alone is ~12 a month at this level
    assert r2 > 0
