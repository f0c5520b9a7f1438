"""`make demo`'s stack stopped by a real SIGTERM at each moment that used to hang or leak:
during its start-up training (the main thread in the training loop, workers running), in the
middle of a retrain started by POST /retrain (a Step Functions execution on the embedded AWS,
its Map's batches training in sandbox processes, two at once, while the API keeps answering), and
right after one. Each time it must exit within 10 s and leave no process behind: nothing of
its process group (it runs in a session of its own) and none of the processes it had started.

The signal goes to the stack's process alone, as ``kill <pid>`` sends it: the workers must
be ended by the stack, not by a signal of their own."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
import os
from pathlib import Path
import signal
import subprocess
import sys
import time

import pytest

from local.aws.embedded import free_port
from local.replay import call
from local.stack import SNAPSHOT_FILES
from tests.conftest import REPO, seasonal_series, tidy_frame
from tests.integration.conftest import PASSWORD, request, stack_environment
from tests.processes import children, descendants, group, wait_gone

STOP_WITHIN_S = 10.0
AREAS = (8, 24, 25, 28, 32, 43, 71)  # with the city: 8 series, two batches, two workers


def _snapshot(folder: Path) -> None:
    import pandas as pd

    areas, types = (folder / name for name in SNAPSHOT_FILES)
    pd.concat([tidy_frame(seasonal_series("2019-01", 60, level=60 + 10 * n, seed=n), area, "ALL")
               for n, area in enumerate(AREAS)]).to_csv(areas, index=False)
    tidy_frame(seasonal_series("2019-01", 60, level=900), None, "ALL").to_csv(types, index=False)


@contextmanager
def _stack(folder: Path, extra: dict[str, str] | None = None) -> Iterator[tuple[subprocess.Popen, str, Path]]:
    """The stack in a session of its own (its pid is its process group), training afresh on two
    workers (a retrain's Map: two batches at once); ``extra``: more environment."""
    _snapshot(folder)
    port = free_port()
    env = stack_environment(port, folder, {**(extra or {}), "CRIMECAST_SNAPSHOT": str(folder),
                                           "CRIMECAST_ADMIN_PASSWORD": PASSWORD})
    log = folder / "stack.err"
    with log.open("w") as output:
        process = subprocess.Popen([sys.executable, "-m", "local.stack", "--fresh", "--workers", "2"], cwd=REPO, env=env,
                                   stdout=subprocess.DEVNULL, stderr=output, start_new_session=True)
    try:
        yield process, f"http://127.0.0.1:{port}", log
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(30)
        for pid in group(process.pid):
            os.kill(pid, signal.SIGKILL)


def _until(condition, timeout: float, what: str, log: Path) -> None:  # noqa: ANN001 - a predicate
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not seen in {timeout:.0f} s: {log.read_text()[-2000:]}")
        time.sleep(0.05)


def _workers(process: subprocess.Popen) -> set[int]:
    return set(descendants(process.pid))


def _ready(base: str) -> bool:
    try:
        return request(f"{base}/health")[0] == 200
    except OSError:
        return False


def _stop(process: subprocess.Popen, log: Path) -> None:
    """SIGTERM to the stack; it exits in time and leaves nothing behind."""
    started_by_it = _workers(process)
    sent = time.monotonic()
    process.send_signal(signal.SIGTERM)
    try:
        code = process.wait(STOP_WITHIN_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running {STOP_WITHIN_S:.0f} s after SIGTERM: {log.read_text()[-2000:]}")
    took = time.monotonic() - sent
    assert code == 0, log.read_text()[-2000:]
    said = log.read_text()
    assert "stopping" in said
    noise = ("Traceback", "No application metrics", "currently have no effect")  # nothing a user reads as a failure
    assert not any(line in said for line in noise), said[-2000:]
    left = wait_gone(started_by_it | group(process.pid), timeout=0.5)
    assert not left, f"left alive after the stack exited ({took:.1f} s): {sorted(left)}"


def _retrain(base: str) -> str:
    status, token = request(f"{base}/auth/token", {"grant_type": "password", "username": "admin", "password": PASSWORD})
    assert status == 200, token
    status, run = request(f"{base}/retrain", token=token["access_token"], method="POST", json_body={})
    assert status == 202, run
    return token["access_token"]


def test_sigterm_during_the_start_up_training(tmp_path: Path) -> None:
    with _stack(tmp_path) as (process, base, log):
        _until(lambda: len(_workers(process)) >= 2, 180, "two training workers", log)
        assert not _ready(base)
        _stop(process, log)
        assert "ready:" not in log.read_text()


def test_sigterm_in_the_middle_of_a_retrain_while_the_api_answers(tmp_path: Path) -> None:
    with _stack(tmp_path, {"RETRAIN_BATCH_SIZE": "1"}) as (process, base, log):  # eight batches, two at a time
        _until(lambda: _ready(base), 240, "ready", log)
        assert not _workers(process)
        token = _retrain(base)
        # Its Map trains two batches at once, each in a sandbox: a worker process of the stack's own.
        _until(lambda: len(children(process.pid)) >= 2, 120, "two batches training in sandboxes", log)
        for path in ("/predict?community_area=Austin&crime_type=ALL&months=6", "/runs?kind=retrain", "/alerts"):
            status, answer = call(f"{base}{path}", token, timeout=10)  # the API answers meanwhile
            assert status == 200, (path, answer)
        status, runs = request(f"{base}/runs?kind=retrain", token=token)
        assert runs["runs"][0]["status"] == "running" and len(children(process.pid)) >= 2, runs  # still training
        _stop(process, log)


def test_sigterm_right_after_a_retrain(tmp_path: Path) -> None:
    with _stack(tmp_path) as (process, base, log):
        _until(lambda: _ready(base), 240, "ready", log)
        token = _retrain(base)

        def finished() -> bool:
            status, runs = request(f"{base}/runs?kind=retrain", token=token)
            return status == 200 and len(runs["runs"]) >= 2 and runs["runs"][0]["status"] in ("succeeded", "failed")

        _until(finished, 120, "the retrain's end", log)
        _stop(process, log)
