"""Shared fixtures: small synthetic series the tests make themselves, the path to the
city's real data (``CRIMECAST_DATA_DIR``, default ``../shared/data``), and the small
fixtures cut from it (tests/fixtures, see README.md there) for where it is absent."""

from __future__ import annotations

from collections.abc import Iterator
import importlib.util
import os
from pathlib import Path
import shutil
import sys
import tempfile
from types import ModuleType

import numpy as np
import pandas as pd
import pytest

from crimecast import settings
from crimecast.tools.data import real_data_dir
from local.aws.lambda_runtime import ACCOUNT_CONCURRENCY_ENV

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
# The tests expect Lambda's default account quota: one exported to try the stack under another
# (docs/local-stack.md) would refuse their reservations.
os.environ.pop(ACCOUNT_CONCURRENCY_ENV, None)


def bench_module(name: str) -> ModuleType:
    """``bench/<name>.py`` loaded once as a module, with bench/ on the path as running it puts it
    there, registered as ``bench_<name>`` (dataclasses look their module up). The bench modules it
    imports in turn stay under their plain names (``levels``): patch those through the module."""
    if f"bench_{name}" in sys.modules:
        return sys.modules[f"bench_{name}"]
    if str(REPO / "bench") not in sys.path:
        sys.path.insert(0, str(REPO / "bench"))
    spec = importlib.util.spec_from_file_location(f"bench_{name}", REPO / "bench" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def data_source_dir() -> Path:
    """The city's real data folder when it is there, else tests/fixtures: the same file names,
    cut small from the real files (tests/fixtures/make_fixtures.py). Tests that read it
    count what they expect from the files, so they hold on either."""
    try:
        return real_data_dir()
    except FileNotFoundError:
        return FIXTURES


def seasonal_series(start: str = "2012-01", months: int = 96, level: float = 100.0, seed: int = 7) -> pd.Series:
    """Monthly counts with a summer peak and Poisson noise, like a mid-size area's crimes."""
    index = pd.period_range(start, periods=months, freq="M")
    shape = 1 + 0.25 * np.sin(2 * np.pi * (index.month.to_numpy() - 4) / 12)
    rng = np.random.default_rng(seed)
    return pd.Series(rng.poisson(level * shape), index=index, name="test").astype("int64")


def tidy_frame(series: pd.Series, community_area: int | None, primary_type: str) -> pd.DataFrame:
    return pd.DataFrame({
        "month": series.index.astype(str),
        "community_area": "" if community_area is None else str(community_area),
        "primary_type": primary_type,
        "count": series.to_numpy(),
    })


@pytest.fixture(autouse=True)
def fresh_settings() -> Iterator[None]:
    """Each test reads the environment it sets up, as a new Lambda container would."""
    settings.reset()
    yield
    settings.reset()


@pytest.fixture
def source_dir() -> Path:
    """The real data folder or, without it, the fixtures (never skips)."""
    return data_source_dir()


# --- skips CI does not expect -----------------------------------------------------------------
# With CRIMECAST_NO_UNEXPECTED_SKIPS=1 (.ci/run sets it) the run fails when a test skips
# unless it is marked network (the live portal) or layer (run by `make layer-test`). Without the
# real data folder the tests read tests/fixtures: none skips for it. A comma list of markers
# replaces that set.
NO_UNEXPECTED_SKIPS = "CRIMECAST_NO_UNEXPECTED_SKIPS"
_unexpected_skips: list[str] = []


def _allowed_skip_markers() -> set[str] | None:
    value = os.environ.get(NO_UNEXPECTED_SKIPS, "").strip()
    if value in ("", "0"):
        return None
    if value != "1":
        return {marker.strip() for marker in value.split(",") if marker.strip()}
    return {"network", "layer"}


def _reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    longrepr = report.longrepr
    return str(longrepr[2]) if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Seen where the run is reported (with pytest-xdist, in the controller): a report carries
    its test's markers among its keywords."""
    allowed = _allowed_skip_markers()
    if allowed is None or not report.skipped or hasattr(report, "wasxfail"):
        return
    if not any(marker in report.keywords for marker in allowed):
        _unexpected_skips.append(f"{report.nodeid}: {_reason(report)}")


def pytest_collectreport(report: pytest.CollectReport) -> None:
    """A whole module skipped at import: its markers cannot be read, so it is never expected."""
    if report.skipped and _allowed_skip_markers() is not None:
        _unexpected_skips.append(f"{report.nodeid} (the whole module): {_reason(report)}")


# --- every role proven both ways (local/aws/iam_calls.py) ---------------------------------------
# The embedded AWS records each decision it makes for a role of template.yaml in one file for the
# whole session: the pytest-xdist workers and the local stacks the tests start inherit
# CRIMECAST_IAM_CALLS from the process that set it here (set it yourself to keep the file). At the
# end the calls are held against template.yaml: a call a role is not granted fails the run; with
# CRIMECAST_CHECK_ROLES=1 (`make pytest`: it takes the whole suite) so does a grant no call used.
CHECK_ROLES = "CRIMECAST_CHECK_ROLES"
_role_problems: list[str] = []
_calls_folder: list[Path] = []  # the folder made here for the file, removed at the end


def pytest_configure(config: pytest.Config) -> None:
    from local.aws.iam_calls import RECORD_ENV

    if hasattr(config, "workerinput") or os.environ.get(RECORD_ENV):  # a worker, or a file of the caller's
        return
    folder = Path(tempfile.mkdtemp(prefix="crimecast-iam-calls-"))
    _calls_folder.append(folder)
    os.environ[RECORD_ENV] = str(folder / "calls.jsonl")


def _check_roles(session: pytest.Session) -> None:
    from local.aws.iam_calls import RECORD_ENV, check, read_calls
    from local.aws.template import load_template

    if hasattr(session.config, "workerinput"):
        return  # the controller checks the calls of every worker
    calls = read_calls(os.environ[RECORD_ENV]) if os.environ.get(RECORD_ENV) else []
    if calls:
        _role_problems.extend(check(calls, load_template(REPO / "template.yaml"), unused=os.environ.get(CHECK_ROLES) == "1"))
    if _role_problems:
        _role_problems.append(f"the calls: {os.environ[RECORD_ENV]}")
    else:
        for folder in _calls_folder:
            shutil.rmtree(folder, ignore_errors=True)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _role_problems:
        terminalreporter.section("template.yaml's roles against the AWS calls recorded under IAM", red=True)
        for line in _role_problems:
            terminalreporter.write_line(line)
    if _unexpected_skips:
        terminalreporter.section(f"unexpected skips ({NO_UNEXPECTED_SKIPS} is set)", red=True)
        for line in _unexpected_skips:
            terminalreporter.write_line(line)
        allowed = ", ".join(sorted(_allowed_skip_markers() or ()))
        terminalreporter.write_line(f"{len(_unexpected_skips)} test(s) skipped without a marker that allows it ({allowed})")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _check_roles(session)
    if (_unexpected_skips or _role_problems) and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
