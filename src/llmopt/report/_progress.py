"""A live progress note while a variant is evaluated (cases done, errors, cache, spend).

The note is drawn after whatever pytest has already written on the current line and
the cursor is moved back to where it was, so pytest's own output (dots, verbose
names, percentages) carries on exactly as without it; the note is cleared when the
variant is done. Only on a terminal (or when asked), never on an xdist worker.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from ..results import CaseResult

CLEAR_TO_END = "\x1b[K"
#: Seconds between two redraws (the last case always redraws).
INTERVAL_S = 0.2
MIN_ROOM = 16


class Progress:
    """Counts the cases of the variant being evaluated and redraws a throttled note."""

    def __init__(
        self,
        write: Callable[[str], None],
        room: Callable[[], int],
        clock: Callable[[], float] = time.monotonic,
        interval: float = INTERVAL_S,
    ) -> None:
        self._write, self._room, self._clock, self._interval = write, room, clock, interval
        self._lock = threading.Lock()
        self._label, self._total, self._done, self._errors, self._cached = "", 0, 0, 0, 0
        self._spent, self._last, self._shown = 0.0, float("-inf"), False

    def started(self, scenario: str, variant: str, total: int) -> None:
        with self._lock:
            self._label, self._total = f"{scenario}/{variant}", total
            self._done = self._errors = self._cached = 0
            self._spent, self._last = 0.0, float("-inf")
            self._draw()

    def case_done(self, result: "CaseResult") -> None:
        with self._lock:
            self._done += 1
            self._errors += result.error is not None
            self._cached += result.cached
            self._spent += result.usage.cost_usd
            if self._done >= self._total or self._clock() - self._last >= self._interval:
                self._draw()

    def finished(self) -> None:
        with self._lock:
            if self._shown:
                self._write(CLEAR_TO_END)
                self._shown = False

    def text(self) -> str:
        """The note as it reads now."""
        return (
            f"[llmopt {self._label}: {self._done}/{self._total} cases, {self._errors} errors, "
            f"{self._cached} cached, ${self._spent:.4f}]"
        )

    def _draw(self) -> None:
        room = self._room() - 2
        if room < MIN_ROOM:
            return
        note = " " + self.text()
        if len(note) > room:
            note = note[: room - 2] + "…]"
        self._last = self._clock()
        self._shown = True
        self._write(f"{CLEAR_TO_END}{note}\x1b[{len(note)}D")


def terminal_progress(config: Any, mode: str) -> Progress | None:
    """A Progress drawing on pytest's terminal, or None when it should stay quiet:
    mode ``off``; ``auto`` off a terminal, under -qq or on an xdist worker."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if mode == "off" or reporter is None or hasattr(config, "workerinput"):
        return None
    if mode == "auto" and (not reporter.isatty or config.get_verbosity() < -1):
        return None
    writer = config.get_terminal_writer()

    def write(text: str) -> None:
        writer.write_raw(text, flush=True)

    def room() -> int:
        return int(writer.fullwidth) - int(writer.width_of_current_line)

    return Progress(write, room)
