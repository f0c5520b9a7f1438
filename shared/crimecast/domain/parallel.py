"""Run one function over many items on every core, with progress.

Built on ``Process`` and ``Pipe`` rather than ``multiprocessing.Pool``: Lambda has no
``/dev/shm``, which Pool's semaphores need, so the same code runs locally and there.

No worker outlives its job, nor its parent:
- a worker starts with the default SIGTERM action and ignores SIGINT (the parent, which a
  terminal's Ctrl-C reaches too, decides), whatever handlers the parent had installed;
- on Linux it asks the kernel for SIGKILL when the thread that forked it ends
  (``prctl(PR_SET_PDEATHSIG)``), and everywhere a watcher thread ends it once its parent
  process is gone (it is then re-parented);
- ``map_processes`` ends its workers on every way out (results, a failed item, an
  exception such as ``KeyboardInterrupt`` in the parent): SIGTERM, then SIGKILL to the
  ones still alive after ``STOP_GRACE_S``; ``stop_workers()`` does the same to every map
  in progress (a server on its way out), and to every ``Worker`` (a long-lived worker that
  runs one call at a time, as a warm Lambda sandbox: the local stack's state machine functions).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
import ctypes
import multiprocessing
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
import os
import signal
import sys
import threading
import time
import traceback
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")

ProgressFn = Callable[[int, int], None]

STOP_GRACE_S = 1.0  # how long a worker has to exit after SIGTERM before SIGKILL
PARENT_POLL_S = 0.5  # how often a worker checks that its parent is still there
_PR_SET_PDEATHSIG = 1
_live: set[BaseProcess] = set()  # the workers of every map in progress, for stop_workers()
_live_lock = threading.Lock()


def _forget_after_fork() -> None:
    """A forked child owns none of its parent's workers, and its lock is its own (the thread that
    forked it held the parent's)."""
    global _live_lock
    _live_lock = threading.Lock()
    _live.clear()


os.register_at_fork(after_in_child=_forget_after_fork)


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


_BLOCKED_AT_FORK = {signal.SIGTERM, signal.SIGINT}


@contextmanager
def _signals_held() -> Iterator[None]:
    """SIGTERM and SIGINT held back across a fork: a worker signalled before it has reset the
    parent's handlers gets them afterwards, with the default action, instead of the parent's."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _BLOCKED_AT_FORK)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _become_worker(parent_pid: int, with_thread: bool = True) -> None:
    """In a forked worker, first thing: the default SIGTERM, no SIGINT, and an end with the parent
    (``with_thread``: also with the thread that forked it, for a worker that serves one call of it)."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the parent's handler (a server's may only set a flag)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent stops the workers
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _BLOCKED_AT_FORK)  # a SIGTERM sent meanwhile is delivered now
    if with_thread and sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # pragma: no cover - no prctl: the watcher below still ends it
            pass

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(PARENT_POLL_S)
        os._exit(1)  # re-parented: the parent died (also covers a parent that died before prctl)

    if os.getppid() != parent_pid:
        os._exit(1)
    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _work(func: Callable[[Any], Any], items: list[tuple[int, Any]], conn: Connection, parent_pid: int) -> None:
    _become_worker(parent_pid)
    try:
        for position, item in items:
            try:
                conn.send(("ok", position, func(item)))
            except (BrokenPipeError, EOFError):
                raise
            except Exception as exc:  # reported to the parent, which re-raises it
                conn.send(("error", position, f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))
                break
        conn.send(("done", -1, None))
        conn.close()
    except (BrokenPipeError, EOFError):  # the parent has stopped listening: nothing to do for it
        os._exit(1)


def descendants(pids: Iterable[int]) -> list[int]:
    """The live processes below ``pids`` (children, theirs ...), from /proc; empty where there is no /proc."""
    parents: dict[int, int] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z":
            parents[int(entry)] = int(fields[1])
    found: list[int] = []
    frontier = set(pids)
    while frontier:
        frontier = {pid for pid, ppid in parents.items() if ppid in frontier and pid not in found}
        found.extend(sorted(frontier))
    return found


def signal_all(pids: Iterable[int], signum: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, signum)
        except OSError:  # gone already
            pass


def _stop(processes: list[BaseProcess], grace: float = STOP_GRACE_S) -> None:
    """SIGTERM to every process still alive, and to what they started (Prophet's Stan runs, which
    would otherwise outlive them), then SIGKILL to those alive after ``grace``; reaped."""
    processes = [p for p in processes if p.pid is not None]  # started ones only
    running = [p for p in processes if p.is_alive()]
    below = descendants(p.pid for p in running if p.pid is not None)
    for process in running:
        process.terminate()
    signal_all(below, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
    for process in processes:
        if process.is_alive():
            process.kill()
            process.join(5.0)
    signal_all(below, signal.SIGKILL)  # the ones still there (the rest are gone: OSError, ignored)


def stop_workers(grace: float = STOP_GRACE_S) -> int:
    """End the workers of every map in progress in this process (e.g. a server stopping while
    a job runs in one of its threads); how many were alive."""
    with _live_lock:
        processes = [p for p in _live if p.pid is not None]
    alive = sum(p.is_alive() for p in processes)
    _stop(processes, grace)
    return alive


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
    pipes: list[Connection] = []
    processes: list[BaseProcess] = []
    results: list[Any] = [None] * len(items)
    done = 0
    try:
        for w in range(workers):
            parent, child = context.Pipe(duplex=False)
            process = context.Process(target=_work, args=(func, indexed[w::workers], child, os.getpid()), daemon=True)
            with _live_lock, _signals_held():
                process.start()
                _live.add(process)
                processes.append(process)
            child.close()
            pipes.append(parent)
        open_pipes = list(pipes)
        while open_pipes:
            # A timeout, so a signal delivered to another thread is handled here within it.
            for conn in wait(open_pipes, timeout=PARENT_POLL_S):
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
        if done == len(items):  # every worker has said "done": give them a moment to exit on their own
            deadline = time.monotonic() + STOP_GRACE_S
            for process in processes:
                process.join(max(0.0, deadline - time.monotonic()))
        _stop(processes)
        with _live_lock:
            _live.difference_update(processes)
        for conn in pipes:
            conn.close()
    if done != len(items):
        raise WorkerError(f"a worker died after {done} of {len(items)} items")
    return results


class CallFailed(WorkerError):
    """``func`` raised in a long-lived worker: its exception's type name, message and traceback."""

    def __init__(self, error_type: str, message: str, trace: str) -> None:
        super().__init__(f"{error_type}: {message}\n{trace}")
        self.error_type, self.error_message = error_type, message


class WorkerDied(WorkerError):
    """A long-lived worker ended in the middle of a call (it crashed, or was killed)."""

    def __init__(self, exitcode: int | None) -> None:
        super().__init__(f"the worker process exited with code {exitcode}")
        self.exitcode = exitcode


def _serve(func: Callable[[Any], Any], setup: Callable[[], None] | None, conn: Connection, parent_pid: int) -> None:
    _become_worker(parent_pid, with_thread=False)  # it outlives the call (the thread) that started it
    if setup is not None:
        setup()
    while True:
        try:
            arg = conn.recv()
        except (EOFError, OSError):  # the parent let it go
            os._exit(0)
        try:
            answer: tuple[str, Any] = ("ok", func(arg))
        except Exception as exc:  # the caller's to handle, as a function's error
            answer = ("error", (type(exc).__name__, str(exc), traceback.format_exc()))
        try:
            conn.send(answer)
        except (BrokenPipeError, EOFError, OSError):
            os._exit(1)


class Worker:
    """A long-lived worker process that runs ``func(arg)`` for one call at a time, as a warm
    Lambda sandbox runs its handler: what ``func`` loads stays loaded for the next call.

    Forked when made, by whichever thread makes it: ``func`` and what it refers to need no
    pickling, only each argument and result. It ends on ``stop()``, on ``stop_workers()``,
    when its parent dies (the watcher; not with the thread that made it, which may end first),
    and when a call outlasts its timeout (``TimeoutError``: it is then stopped)."""

    def __init__(self, func: Callable[[Any], Any], setup: Callable[[], None] | None = None) -> None:
        context = multiprocessing.get_context("fork")
        # The pipe made and its child's end closed here under the lock: a worker forked meanwhile by
        # another thread does not hold this one's end open (this one's death would then not be seen).
        with _live_lock, _signals_held():
            self._conn, child = context.Pipe()
            self.process = context.Process(target=_serve, args=(func, setup, child, os.getpid()), daemon=True)
            self.process.start()
            _live.add(self.process)
            child.close()

    @property
    def pid(self) -> int | None:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.is_alive()

    def call(self, arg: Any, timeout: float | None = None) -> Any:
        """``func(arg)`` in the worker: its result, or CallFailed (``func`` raised), WorkerDied, TimeoutError."""
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            self._conn.send(arg)
            # Short waits, so a signal delivered to another thread is handled in the caller meanwhile.
            while not self._conn.poll(PARENT_POLL_S if deadline is None else
                                      min(PARENT_POLL_S, max(0.0, deadline - time.monotonic()))):
                if not self.process.is_alive() and not self._conn.poll(0):  # its end may be held open elsewhere
                    raise EOFError("the worker is gone")
                if deadline is not None and time.monotonic() >= deadline:
                    self.stop()
                    raise TimeoutError(f"the worker's call ran past {timeout:.2f} s")
            status, payload = self._conn.recv()
        except (EOFError, BrokenPipeError, ConnectionResetError) as exc:
            self.stop()
            raise WorkerDied(self.process.exitcode) from exc
        if status == "error":
            raise CallFailed(*payload)
        return payload

    def stop(self, grace: float = STOP_GRACE_S) -> None:
        """End the worker and what it started (SIGTERM, then SIGKILL after ``grace``)."""
        _stop([self.process], grace)
        with _live_lock:
            _live.discard(self.process)
        self._conn.close()


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
