"""The seed specification's tests for ChicagoCrimePredictor (section 4, test_chicago_crime_predictor.py):
test_init, the fixtures mock_df_crime and mock_df_socio, test_load_df_crimes, test_load_df_socio,
test_return_data, test_model_train and test_model_predict as the seed wrote them (pytest-mock
where the seed mocks), then this project's closer checks of the same methods."""

from pathlib import Path

import pandas as pd
from prophet import Prophet
import pytest

from crimecast.domain.errors import InvalidInputError
from crimecast.tools.predictor import ChicagoCrimePredictor
from tests.conftest import seasonal_series, tidy_frame


@pytest.fixture
def mock_df_crime() -> pd.DataFrame:
    """A few raw incident rows, as the portal exports them: assaults and batteries, no theft."""
    return pd.DataFrame({
        "ID": [1, 2, 3, 4],
        "Date": ["01/05/2022 10:00:00 PM", "01/17/2022 03:30:00 AM", "02/07/2022 01:00:00 AM", "02/21/2022 11:45:00 AM"],
        "Primary Type": ["ASSAULT", "BATTERY", "ASSAULT", "ASSAULT"],
        "Community Area": [25, 25, 25, 8],
    })


@pytest.fixture
def monthly_df_crime() -> pd.DataFrame:
    """Seven years of monthly assaults in Austin, and a January the export ended early in."""
    frame = tidy_frame(seasonal_series("2015-01", 84), 25, "ASSAULT")
    frame.loc[len(frame)] = ["2022-01", "25", "ASSAULT", 12]
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
    predictor = ChicagoCrimePredictor()
    train, test = predictor.return_data("THEFT")
    assert isinstance(train, pd.DataFrame)
    assert isinstance(test, pd.DataFrame)


def test_model_train(mocker) -> None:
    mocker.patch("prophet.Prophet.fit")
    predictor = ChicagoCrimePredictor()
    df = pd.DataFrame({"ds": [1], "y": [1]})
    predictor.model_train(df)
    assert isinstance(predictor.model, Prophet)


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


# --- the same methods, closer ------------------------------------------------------------


def test_return_data_holds_out_the_last_complete_months(mocker, monthly_df_crime: pd.DataFrame) -> None:
    mocker.patch("pandas.read_csv", return_value=monthly_df_crime)
    train, test = ChicagoCrimePredictor(months_pred=12).return_data("ASSAULT", "Austin")
    assert list(train.columns) == ["ds", "y"] and len(test) == 12 and len(train) == 72
    assert test["ds"].iloc[-1] == pd.Timestamp("2021-12-01")  # the partial January is in neither


def test_return_data_of_a_type_not_in_the_data_is_empty_and_says_which_are(mocker, mock_df_crime: pd.DataFrame) -> None:
    mocker.patch("pandas.read_csv", return_value=mock_df_crime)
    with pytest.warns(UserWarning, match=r"no 25:THEFT rows in .*; types there: ALL, ASSAULT, BATTERY"):
        train, test = ChicagoCrimePredictor().return_data("THEFT", "Austin")
    assert train.empty and test.empty and list(train.columns) == list(test.columns) == ["ds", "y"]
    assert str(train["ds"].dtype).startswith("datetime64")


def test_return_data_of_a_series_too_short_to_hold_out_says_so(mocker, mock_df_crime: pd.DataFrame) -> None:
    mocker.patch("pandas.read_csv", return_value=mock_df_crime)
    with pytest.raises(InvalidInputError, match="fewer than months_pred"):
        ChicagoCrimePredictor().return_data("ASSAULT", 25)


def test_model_train_hands_the_frame_to_prophet_as_it_is(mocker) -> None:
    fit = mocker.patch.object(Prophet, "fit")
    frame = pd.DataFrame({"ds": [1], "y": [1]})
    ChicagoCrimePredictor().model_train(frame)
    fit.assert_called_once()
    assert fit.call_args.args[0] is frame  # validation is Prophet's, as in the seed
    with pytest.raises(ValueError, match="less than 2 non-NaN rows"):  # and unmocked, Prophet refuses it
        mocker.stopall()
        ChicagoCrimePredictor().model_train(frame)


def test_model_train_fits_the_project_model_on_monthly_data(mocker) -> None:
    fit = mocker.patch.object(Prophet, "fit")
    predictor = ChicagoCrimePredictor()
    history = seasonal_series("2015-01", 60)
    predictor.model_train(pd.DataFrame({"ds": history.index.to_timestamp(), "y": history.to_numpy()}))
    assert isinstance(predictor.model, Prophet) and predictor.forecaster is not None
    assert predictor.forecaster.prophet is predictor.model
    fit.assert_called_once()
    assert fit.call_args.args[0]["y"].max() < 10  # log1p counts: the project's model, not the seed's
