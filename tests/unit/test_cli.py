import json
from pathlib import Path
import subprocess
import sys

import pytest

from crimecast.tools.cli import main
from tests.conftest import REPO, seasonal_series, tidy_frame


@pytest.fixture
def counts_file(tmp_path: Path) -> Path:
    path = tmp_path / "counts.csv"
    tidy_frame(seasonal_series("2016-01", 60), 25, "THEFT").to_csv(path, index=False)
    return path


def test_backtest_writes_the_documented_json(counts_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    completed = subprocess.run(
        [sys.executable, "-m", "crimecast", "backtest", "--counts", str(counts_file), "--series", "Austin:theft",
         "--origins", "2019-12,2020-06", "--horizon", "6", "--json", str(out)],
        capture_output=True, text=True, cwd=REPO, timeout=300,
    )
    assert completed.returncode == 0, completed.stderr
    assert "2/2" in completed.stderr  # progress
    result = json.loads(out.read_text())
    assert [r["origin"] for r in result["series"]] == ["2019-12", "2020-06"]
    row = result["series"][0]
    assert (row["community_area"], row["primary_type"], row["horizon"], row["n"]) == (25, "THEFT", 6, 6)
    for method in ("model", "seed_prophet", "seasonal_naive"):
        assert set(row[method]) == {"mae", "mse", "rmse", "r2", "mase", "coverage"}
    assert json.loads(completed.stdout)["rows"] == 2


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--series", "Gotham:THEFT"], "Gotham"),
        (["--series", "Austin:THEFTS"], "did you mean: THEFT"),
        (["--series", "1:THEFT"], "no series 1:THEFT"),
        (["--origins", "2030-01"], "valid origins run from"),
        (["--origins", "2019-1x"], "YYYY-MM"),
        (["--horizon", "0"], "horizon"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(counts_file: Path, capsys, extra: list[str], message: str) -> None:
    args = ["backtest", "--counts", str(counts_file), "--origins", "2019-12", *extra]
    if "--origins" in extra:
        args[3:5] = []
    status = main(args)
    err = capsys.readouterr().err
    assert status == 2
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_missing_and_malformed_files_are_named(tmp_path: Path, capsys) -> None:
    assert main(["backtest", "--counts", str(tmp_path / "none.csv"), "--origins", "2019-12"]) == 2
    assert "none.csv" in capsys.readouterr().err
    bad = tmp_path / "bad.csv"
    bad.write_text("when,what\n1,2\n")
    assert main(["backtest", "--counts", str(bad), "--origins", "2019-12"]) == 2
    assert "unknown columns" in capsys.readouterr().err


def test_a_series_too_short_is_refused(tmp_path: Path, capsys) -> None:
    short = tmp_path / "short.csv"
    tidy_frame(seasonal_series("2016-01", 12), 25, "THEFT").to_csv(short, index=False)
    assert main(["backtest", "--counts", str(short), "--origins", "2016-06"]) == 2
    assert "too short" in capsys.readouterr().err
