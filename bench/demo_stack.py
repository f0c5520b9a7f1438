"""``python -m local.stack`` as ``make demo`` runs it, for the benchmarks that time its start or load it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
import os
from pathlib import Path
import subprocess
import sys
import time
import urllib.request

from local.aws.embedded import free_port
from local.model_cache import CACHE_ENV

REPO = Path(__file__).resolve().parents[1]


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as answer:
            return answer.status == 200
    except OSError:
        return False


@contextmanager
def demo_stack(snapshot: Path, model_cache: Path, password: str, log: Path, timeout: float) -> Iterator[tuple[int, float]]:
    """The stack over ``snapshot``, reusing the models of ``model_cache``, its admin's password
    ``password`` and its stderr in ``log``: its port once /health answers, and the seconds until
    then. Stopped on the way out; SystemExit with the log's end when it exits or is not ready
    within ``timeout`` seconds."""
    port = free_port()
    env = {**os.environ, "CRIMECAST_PORT": str(port), "CRIMECAST_SNAPSHOT": str(snapshot), CACHE_ENV: str(model_cache),
           "CRIMECAST_ADMIN_PASSWORD": password, "PYTHONPATH": os.pathsep.join([str(REPO / "shared"), str(REPO)])}
    env.pop("AWS_ENDPOINT_URL", None)
    started = time.monotonic()
    with log.open("w") as output:
        process = subprocess.Popen([sys.executable, "-m", "local.stack"], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                                   stderr=output, start_new_session=True)
    try:
        while not _healthy(port):
            if process.poll() is not None:
                raise SystemExit(f"the stack exited: {log.read_text()[-2000:]}")
            if time.monotonic() - started > timeout:
                raise SystemExit(f"the stack was not ready within {timeout:.0f} s: {log.read_text()[-2000:]}")
            time.sleep(0.5)
        yield port, time.monotonic() - started
    finally:
        process.terminate()
        process.wait(30)
