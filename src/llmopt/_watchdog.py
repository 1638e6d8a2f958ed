"""Stops a pytest-xdist worker whose controller is gone.

A controller killed with SIGKILL cannot tell its workers to stop, nor remove the
temporary folders it made for them (the shared budget ledger, the progress files).
Left alone, a worker keeps evaluating, and calling paid APIs, for as long as execnet
takes to notice (several seconds, then a SIGINT, then more seconds).

Each worker watches its parent process instead: when its parent id changes (the
worker was re-parented because the controller died), it removes those folders,
interrupts itself as Ctrl-C would (the evaluation's event loop cancels the calls in
flight, pytest stops) and, if that has not ended the process within a grace period,
exits.
"""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

if TYPE_CHECKING:
    import pytest

__all__ = ["ControllerWatch", "watch_controller"]

#: Seconds between two looks at the parent process.
POLL_S = 0.2
#: Seconds a worker has to stop after its interrupt before it exits.
GRACE_S = 2.0


class ControllerWatch:
    """Watches the parent process ``parent`` from a daemon thread; when it is gone,
    removes ``folders`` and stops this process (``interrupt``, then ``exit`` after
    ``grace_s`` seconds)."""

    def __init__(
        self,
        parent: int,
        folders: Sequence[Path] = (),
        *,
        poll_s: float = POLL_S,
        grace_s: float = GRACE_S,
        interrupt: Callable[[], None] | None = None,
        exit: Callable[[], None] | None = None,
    ) -> None:
        self.parent = parent
        self.folders = tuple(folders)
        self.poll_s, self.grace_s = poll_s, grace_s
        self._interrupt = interrupt or _interrupt_self
        self._exit = exit or _exit_now
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="llmopt-controller-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop watching (the run is ending normally)."""
        self._stopped.set()

    def controller_gone(self) -> bool:
        return os.getppid() != self.parent

    def _run(self) -> None:
        while not self._stopped.wait(self.poll_s):
            if self.controller_gone():
                self._stop_worker()
                return

    def _stop_worker(self) -> None:
        for folder in self.folders:
            shutil.rmtree(folder, ignore_errors=True)
        self._interrupt()
        time.sleep(self.grace_s)  # a daemon thread: gone with the process if it ends first
        self._exit()


def watch_controller(config: "pytest.Config") -> ControllerWatch | None:
    """In an xdist worker, start watching its controller (stopped when the run ends
    normally); elsewhere, nothing."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput is None or os.getppid() == 1:
        return None
    from ._session import LEDGER_KEY, PROGRESS_KEY

    ledger, progress = workerinput.get(LEDGER_KEY), workerinput.get(PROGRESS_KEY)
    folders = [Path(ledger).parent] if ledger else []
    folders += [Path(progress)] if progress else []
    watch = ControllerWatch(os.getppid(), folders)
    watch.start()
    config.add_cleanup(watch.stop)
    return watch


def _interrupt_self() -> None:
    """Ctrl-C for this process: a running evaluation cancels its calls, pytest stops."""
    os.kill(os.getpid(), signal.SIGINT)


def _exit_now() -> None:
    os._exit(3)  # pytest's "interrupted" exit status
