"""Run one function over many items on every core, with progress.

Built on ``Process`` and ``Pipe`` rather than ``multiprocessing.Pool``: Lambda has no
``/dev/shm``, which Pool's semaphores need, so the same code runs locally and there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
import multiprocessing
from multiprocessing.connection import Connection, wait
import os
import sys
import time
import traceback
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")

ProgressFn = Callable[[int, int], None]


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def _work(func: Callable[[Any], Any], items: list[tuple[int, Any]], conn: Connection) -> None:
    for position, item in items:
        try:
            conn.send(("ok", position, func(item)))
        except Exception as exc:  # reported to the parent, which re-raises it
            conn.send(("error", position, f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))
            break
    conn.send(("done", -1, None))
    conn.close()


class WorkerError(RuntimeError):
    """An item failed in a worker process; the message carries the worker's traceback."""


def map_processes(
    func: Callable[[T], R],
    items: Sequence[T],
    workers: int | None = None,
    progress: ProgressFn | None = None,
) -> list[R]:
    """``[func(x) for x in items]``, in order, spread over ``workers`` processes.

    Items are dealt round-robin, so long and short items mix across workers.
    ``progress(done, total)`` is called in the parent after each item.
    """
    workers = min(workers or default_workers(), len(items))
    if workers <= 1:
        results = []
        for done, item in enumerate(items, 1):
            results.append(func(item))
            if progress:
                progress(done, len(items))
        return results
    context = multiprocessing.get_context("fork" if sys.platform != "win32" else "spawn")
    indexed = list(enumerate(items))
    pipes, processes = [], []
    for w in range(workers):
        parent, child = context.Pipe(duplex=False)
        process = context.Process(target=_work, args=(func, indexed[w::workers], child), daemon=True)
        process.start()
        child.close()
        pipes.append(parent)
        processes.append(process)
    results: list[Any] = [None] * len(items)
    done, open_pipes = 0, list(pipes)
    try:
        while open_pipes:
            for conn in wait(open_pipes):
                try:
                    status, position, payload = conn.recv()  # type: ignore[union-attr]
                except EOFError:
                    open_pipes.remove(conn)
                    continue
                if status == "error":
                    raise WorkerError(payload)
                if status == "done":
                    open_pipes.remove(conn)
                    continue
                results[position] = payload
                done += 1
                if progress:
                    progress(done, len(items))
    finally:
        for process in processes:
            process.join(timeout=0.1 if done == len(items) else 0)
            if process.is_alive():
                process.terminate()
    if done != len(items):
        raise WorkerError(f"a worker died after {done} of {len(items)} items")
    return results


class StderrProgress:
    """'label: 12/80 (15%)' on one stderr line, redrawn at most ten times a second."""

    def __init__(self, label: str, stream: Any = None) -> None:
        self.label, self.stream, self._last = label, stream or sys.stderr, 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - self._last < 0.1:
            return
        self._last = now
        end = "\n" if done >= total else ""
        self.stream.write(f"\r{self.label}: {done}/{total} ({100 * done // max(total, 1)}%){end}")
        self.stream.flush()
