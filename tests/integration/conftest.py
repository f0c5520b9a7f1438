"""The local stack (``python -m local.stack``, as `make demo` starts it) on a free port, over a
small snapshot; each test module that needs one starts its own (one stops its stack)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
import os
from pathlib import Path
import subprocess
import sys
import time
from typing import NamedTuple

import pytest

from local.aws.embedded import free_port
from local.replay import call
from local.stack import SNAPSHOT_FILES
from tests.conftest import REPO, seasonal_series, tidy_frame

PASSWORD = "integration-admin-password"


def request(url: str, data: dict | None = None, token: str | None = None, method: str | None = None,
            json_body: dict | None = None) -> tuple[int, dict]:
    """One HTTP request; a form body from ``data``, a JSON body from ``json_body``."""
    return call(url, token, form=data, body=json_body, method=method, timeout=30)


class Stack(NamedTuple):
    base: str  # http://127.0.0.1:<port>
    process: subprocess.Popen
    log: Path  # what the stack prints (stderr), e.g. the embedded AWS address


def stack_environment(port: int, folder: Path, extra: dict[str, str]) -> dict[str, str]:
    """The environment of a stack started as a process on ``port``: this one's, with a model cache
    of its own in ``folder`` (in the checkout's, out/model-cache, models an earlier run trained on
    the same data and code would be reused, and the stack would record no retrain run of its own),
    no endpoint of another embedded AWS, this checkout's package first (the virtualenv may point at
    another checkout's), then ``extra``."""
    env = {**os.environ, "CRIMECAST_PORT": str(port), "CRIMECAST_MODEL_CACHE": str(folder / "model-cache"), **extra}
    env.pop("AWS_ENDPOINT_URL", None)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "shared"), str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])
    return env


@contextmanager
def running_stack(snapshot: Path, env: dict[str, str] | None = None, ready_s: float = 240,
                  synthetic: bool = True) -> Iterator[Stack]:
    """The stack over a snapshot of two series (area 25 and the city, five years), or, with
    ``synthetic=False``, over the files already in ``snapshot``: its base URL,
    its process (killed on the way out if still running) and the file its output goes to (a
    file, not a pipe nobody reads, which would block the stack once full). ``env``: more
    environment for it (e.g. CRIMECAST_AS_OF, which makes it replay instead)."""
    if synthetic:
        areas, types = (snapshot / name for name in SNAPSHOT_FILES)
        tidy_frame(seasonal_series("2019-01", 60, level=120), 25, "ALL").to_csv(areas, index=False)
        tidy_frame(seasonal_series("2019-01", 60, level=900), None, "ALL").to_csv(types, index=False)
    port = free_port()
    env = stack_environment(port, snapshot, {"CRIMECAST_SNAPSHOT": str(snapshot), "CRIMECAST_ADMIN_PASSWORD": PASSWORD,
                                             **(env or {})})
    log = snapshot / "stack.err"
    with log.open("w") as output:
        process = subprocess.Popen([sys.executable, "-m", "local.stack"], cwd=REPO, env=env,
                                   stdout=subprocess.DEVNULL, stderr=output)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + ready_s
        while time.monotonic() < deadline:
            try:
                if request(f"{base}/health")[0] == 200:
                    break
            except OSError:
                pass
            if process.poll() is not None:
                pytest.fail(f"the stack exited: {log.read_text()}")
            time.sleep(0.5)
        else:
            pytest.fail(f"the stack did not become ready in {ready_s:.0f} s: {log.read_text()[-2000:]}")
        yield Stack(base, process, log)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
