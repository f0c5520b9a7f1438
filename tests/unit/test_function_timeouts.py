"""A handler past its function's timeout is stopped there, in a sandbox process (killed) as in this
process (FunctionStopped at its next instruction): nothing it would have done afterwards happens,
as on Lambda. One that API Gateway stopped waiting for runs on until its own timeout."""

from __future__ import annotations

from pathlib import Path
import time

import pytest

from crimecast.domain import parallel
from local.aws.lambda_runtime import Functions, FunctionTimeout, IntegrationTimeout

ENTRY = ("tests/fixtures/lambda/", "sandboxed.handler")


def _progress(path: Path) -> str:
    return path.read_text(encoding="ascii") if path.exists() else ""


@pytest.mark.parametrize("sandboxed", [True, False], ids=["sandbox", "in-process"])
def test_a_handler_past_its_timeout_does_nothing_more(tmp_path: Path, sandboxed: bool) -> None:
    functions = Functions(sandboxed={ENTRY} if sandboxed else ())
    out = tmp_path / "progress"
    try:
        with pytest.raises(FunctionTimeout):
            functions.invoke(*ENTRY, {"do": "count", "steps": 500, "to": str(out)}, timeout=0.5)
        time.sleep(0.2)  # the stop lands at the handler's next instruction: within one 20 ms step
        at_timeout = _progress(out)
        time.sleep(0.4)
        assert _progress(out) == at_timeout  # no step after the timeout, not even its except Exception
        # It ran until then: 25 steps in 0.5 s, a late stop's few more; on a loaded machine starting the
        # sandbox can take most of the 0.5 s (a CI run beside another saw 1 step)
        assert at_timeout.isdigit() and 1 <= int(at_timeout) <= 40
        assert functions.invoke(*ENTRY, {}, timeout=5)["invocations"] == 1  # the next one, in a new container
    finally:
        parallel.stop_workers()


def test_a_handler_the_gateway_gave_up_on_runs_until_its_own_timeout(tmp_path: Path) -> None:
    functions = Functions()
    out = tmp_path / "progress"
    with pytest.raises(IntegrationTimeout):
        functions.invoke(*ENTRY, {"do": "count", "steps": 500, "to": str(out)}, timeout=1.0,
                         give_up_at=time.monotonic() + 0.3)
    time.sleep(0.2)
    before = _progress(out)
    time.sleep(0.2)
    assert int(_progress(out)) > int(before)  # still running past API Gateway's limit, as on AWS
    time.sleep(0.8)  # past its 1 s timeout
    stopped = _progress(out)
    time.sleep(0.3)
    assert _progress(out) == stopped and stopped.isdigit() and int(stopped) < 60
