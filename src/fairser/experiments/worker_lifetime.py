"""Worker processes never outlive the grid that started them.

A ``processes:N`` worker (:class:`fairser.experiments.executors.ProcessExecutor`) calls
:func:`die_with_parent` first thing: on Linux the kernel then sends it SIGTERM when its parent
dies (``prctl(PR_SET_PDEATHSIG)``), and on every OS a daemon thread checks every
:data:`WATCH_INTERVAL_S` seconds that its parent is still its parent (an orphan is
re-parented). So a grid process killed with SIGKILL (or dying any other way) takes its workers
with it. While the pool runs, :func:`sigterm_stops_grid` turns SIGTERM on the grid process into
:class:`GridTerminated`; the executor then terminates the workers (:func:`stop_workers`) and the
exception ends the run with one line and exit code 143. Records are written atomically, so
killed fits leave none: finished fits are kept and a rerun resumes.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from typing import Any

from fairser.errors import FairserError

__all__ = ["WATCH_INTERVAL_S", "GridTerminated", "die_with_parent", "sigterm_stops_grid",
           "stop_workers"]

#: Seconds between a worker's checks that its parent process is alive.
WATCH_INTERVAL_S = 0.5

#: Seconds a terminated worker gets to exit before it is killed.
_STOP_TIMEOUT_S = 5.0

#: ``prctl`` option: the signal a process gets when its parent dies (linux/prctl.h).
_PR_SET_PDEATHSIG = 1


class GridTerminated(FairserError):
    """The grid's process got SIGTERM: its workers were stopped, finished fits are kept."""

    exit_code = 128 + signal.SIGTERM


def _watch_parent(parent: int) -> None:
    """Exit this process (no cleanup: records are written atomically) once ``parent`` died."""
    while True:
        time.sleep(WATCH_INTERVAL_S)
        if os.getppid() != parent:
            os._exit(1)


def die_with_parent(parent: int) -> None:
    """End this worker when ``parent`` (the grid's process) dies, however it dies.

    On Linux the kernel sends SIGTERM on the parent's death (``PR_SET_PDEATHSIG``); on every
    OS a daemon thread polls the parent pid (an orphan is re-parented, so its ``getppid``
    changes). A parent that died before this ran is caught by the first check.
    """
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        except (OSError, AttributeError):  # pragma: no cover - no usable libc: the thread
            pass
    if os.getppid() != parent:
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent,), name="fairser-parent-watch",
                     daemon=True).start()


@contextmanager
def sigterm_stops_grid() -> Iterator[None]:
    """While the pool runs, SIGTERM raises :class:`GridTerminated` in this (main) thread.

    Elsewhere than in the main thread signal handlers cannot be set: nothing changes there
    (the workers still end with this process). The previous handler is restored after.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum: int, frame: Any) -> None:
        raise GridTerminated("terminated (SIGTERM): the worker processes were stopped; "
                             "finished fits are kept, rerun the same command to resume")

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


def stop_workers(pool: ProcessPoolExecutor) -> None:
    """Terminate the pool's worker processes (then kill those still alive) and reap them."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    for process in processes:
        if process.is_alive():
            process.terminate()
    deadline = time.monotonic() + _STOP_TIMEOUT_S
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join(1.0)
    # The pool's manager thread sees the dead workers and closes its wake-up pipe. Wait for it
    # (bounded): otherwise concurrent.futures' exit hook can write to that pipe while it is
    # being closed, and Python prints "Exception ignored ... OSError: [Errno 9] Bad file
    # descriptor" with a traceback after the one-line message (seen under load).
    pool.shutdown(wait=False, cancel_futures=True)
    manager = getattr(pool, "_executor_manager_thread", None)
    if manager is not None and manager.is_alive():
        manager.join(_STOP_TIMEOUT_S)
