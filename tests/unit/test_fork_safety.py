"""A forked child (the local stack's Lambda sandboxes, the retrain's workers) starts as a new
execution environment does: with none of its parent's cached reads or secrets, and with module
locks of its own, free even when a thread of the parent held them at the fork (the stack forks a
sandbox while its gateway threads serve requests)."""

from __future__ import annotations

from collections.abc import Callable
import os

import pytest

from crimecast.adapters import secrets, series_store
from crimecast.domain import parallel
from crimecast.jobs import accounts


def _in_child(check: Callable[[], bool]) -> bool:
    """``check()`` run in a forked child; whether it returned True (within a few seconds)."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os._exit(0 if check() else 1)
        except BaseException:  # noqa: BLE001
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0


@pytest.mark.parametrize("module, name", [(series_store, "_read_cache_lock"), (accounts, "_refetch_lock"),
                                          (parallel, "_live_lock")])
def test_a_lock_held_at_the_fork_is_free_in_the_child(module: object, name: str) -> None:
    held = getattr(module, name)
    with held:  # as a thread of the parent would hold it while another forks
        assert _in_child(lambda: getattr(module, name).acquire(timeout=2))
    assert getattr(module, name) is held  # the parent's own is untouched


def test_the_child_keeps_none_of_the_parent_s_reads_nor_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(series_store._read_cache, -1, (None, {}))
    monkeypatch.setattr(parallel, "_live", {"a worker of the parent's"})
    assert _in_child(lambda: not series_store._read_cache and not parallel._live)
    assert -1 in series_store._read_cache and parallel._live  # the parent's stay


def test_the_child_fetches_its_secrets_anew() -> None:
    provider = secrets._provider("a client")  # cached per client
    assert secrets._provider("a client") is provider
    assert _in_child(lambda: secrets._provider("a client") is not provider)
    secrets._provider.cache_clear()


def test_the_fault_injector_s_lock_is_the_child_s_own(monkeypatch: pytest.MonkeyPatch) -> None:
    from local.aws import faults

    injector = faults.Faults({"dynamodb": 0.5})
    monkeypatch.setattr(faults, "_active", injector)
    with injector._lock:
        assert _in_child(lambda: faults._active is not None and faults._active._lock.acquire(timeout=2))
