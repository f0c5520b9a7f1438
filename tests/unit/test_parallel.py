import os
from pathlib import Path
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from crimecast.domain import parallel
from crimecast.domain.parallel import WorkerError, map_processes
from tests.conftest import REPO
from tests.processes import alive, descendants, wait_gone


def _square(x: int) -> int:
    return x * x


def _fail_on_three(x: int) -> int:
    if x == 3:
        raise ValueError("three is bad")
    return x


def _sleep_unless_zero(x: int) -> int:
    if x:
        time.sleep(60)
    return x


def _ignore_sigterm_and_sleep(x: int) -> int:
    if x:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        time.sleep(60)
    return x


def test_results_come_back_in_order_with_progress() -> None:
    seen: list[tuple[int, int]] = []
    assert map_processes(_square, list(range(10)), workers=2, progress=lambda d, t: seen.append((d, t))) == [
        x * x for x in range(10)
    ]
    assert seen[-1] == (10, 10) and len(seen) == 10
    assert not descendants(os.getpid())


def test_a_failing_item_raises_with_its_message() -> None:
    with pytest.raises(WorkerError, match="three is bad"):
        map_processes(_fail_on_three, list(range(6)), workers=2)
    assert not descendants(os.getpid())


class _Interrupted(Exception):
    pass


def _interrupt_after_first(workers: list) -> parallel.ProgressFn:
    def progress(done: int, total: int) -> None:
        workers.extend(parallel._live)
        raise _Interrupted  # e.g. a KeyboardInterrupt raised by a signal handler in the parent

    return progress


def test_workers_do_not_inherit_the_parents_sigterm_handler() -> None:
    """A server's SIGTERM handler (one that only sets a flag) must not keep a worker alive:
    interrupted, the map ends its workers with SIGTERM alone, at once."""
    previous = signal.signal(signal.SIGTERM, lambda *_: None)
    workers: list = []
    started = time.monotonic()
    try:
        with pytest.raises(_Interrupted):
            map_processes(_sleep_unless_zero, [0, 1, 2, 3], workers=3, progress=_interrupt_after_first(workers))
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert time.monotonic() - started < parallel.STOP_GRACE_S + 5
    assert workers and {w.exitcode for w in workers if w.exitcode != 0} == {-signal.SIGTERM}
    assert not descendants(os.getpid())


def test_a_worker_that_ignores_sigterm_is_killed_after_the_grace() -> None:
    workers: list = []
    started = time.monotonic()
    with pytest.raises(_Interrupted):
        map_processes(_ignore_sigterm_and_sleep, [0, 1, 2, 3], workers=3, progress=_interrupt_after_first(workers))
    assert time.monotonic() - started < parallel.STOP_GRACE_S + 5
    assert -signal.SIGKILL in {w.exitcode for w in workers}
    assert not descendants(os.getpid())


def test_stop_workers_ends_a_map_running_in_another_thread() -> None:
    outcome: list[BaseException] = []

    def job() -> None:
        try:
            map_processes(_sleep_unless_zero, [1, 2], workers=2)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            outcome.append(exc)

    thread = threading.Thread(target=job)
    thread.start()
    deadline = time.monotonic() + 30
    while len(descendants(os.getpid())) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert parallel.stop_workers() == 2
    thread.join(10)
    assert not thread.is_alive() and isinstance(outcome[0], WorkerError)
    assert not descendants(os.getpid())


def test_workers_end_with_their_parent_when_it_is_killed(tmp_path: Path) -> None:
    """The parent SIGKILLed (no finally runs): its workers end on their own, at once."""
    script = textwrap.dedent(f"""
        import sys, time
        sys.path[:0] = [{str(REPO / "shared")!r}, {str(REPO)!r}]
        from crimecast.domain.parallel import map_processes
        from tests.unit.test_parallel import _sleep_unless_zero
        map_processes(_sleep_unless_zero, [1, 2], workers=2)
    """)
    parent = subprocess.Popen([sys.executable, "-c", script], cwd=REPO)
    workers: set[int] = set()
    try:
        deadline = time.monotonic() + 60
        while len(workers := descendants(parent.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(workers) == 2
        parent.kill()
        parent.wait(10)
        assert not wait_gone(workers, timeout=3), "workers outlived their parent"
    finally:
        parent.kill()
        for pid in workers:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


class _Counter:
    """State a long-lived worker keeps between calls (what a warm sandbox keeps loaded)."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, action: str) -> tuple[int, int]:
        self.calls += 1
        if action == "raise":
            raise KeyError("no such series")
        if action == "die":
            os._exit(7)
        if action == "hang":
            time.sleep(60)
        return os.getpid(), self.calls


def test_a_worker_serves_calls_one_after_another_and_keeps_what_it_loaded() -> None:
    worker = parallel.Worker(_Counter())
    try:
        first, second = worker.call("ok"), worker.call("ok")
        assert first[0] == second[0] == worker.pid != os.getpid()
        assert (first[1], second[1]) == (1, 2)  # the same process, warm
        with pytest.raises(parallel.CallFailed) as failed:
            worker.call("raise")
        assert failed.value.error_type == "KeyError" and "no such series" in failed.value.error_message
        assert worker.call("ok")[1] == 4 and worker.alive()  # a call that raised leaves it serving
    finally:
        worker.stop()
    assert not worker.alive()


def test_a_worker_that_dies_or_outlasts_its_timeout_is_reported_and_gone() -> None:
    dying, sibling = parallel.Worker(_Counter()), parallel.Worker(_Counter())  # the sibling holds no end of its pipe
    try:
        with pytest.raises(parallel.WorkerDied) as died:
            dying.call("die")
        assert died.value.exitcode == 7
        hanging = parallel.Worker(_Counter())
        with pytest.raises(TimeoutError):
            hanging.call("hang", timeout=0.5)
        assert not hanging.alive() and sibling.call("ok")[1] == 1
    finally:
        sibling.stop()


def test_stop_workers_ends_idle_and_busy_long_lived_workers() -> None:
    idle, busy = parallel.Worker(_Counter()), parallel.Worker(_Counter())
    outcome: list[BaseException] = []

    def call() -> None:
        try:
            busy.call("hang")
        except BaseException as exc:  # noqa: BLE001 - examined below
            outcome.append(exc)

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    time.sleep(0.2)  # the call is under way (were it not, the worker would still be ended)
    pids = {idle.pid, busy.pid}
    assert parallel.stop_workers() == 2
    thread.join(5)
    assert not thread.is_alive() and isinstance(outcome[0], parallel.WorkerDied)
    assert wait_gone(pids, timeout=2) == set()
