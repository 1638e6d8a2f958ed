"""A live progress note while a variant is evaluated (cases done, errors, cache, spend).

The note is drawn after whatever pytest has already written on the current line and
the cursor is moved back to where it was, so pytest's own output (dots, verbose
names, percentages) carries on exactly as without it; the note is cleared when the
variant is done. Only on a terminal (or when asked).

Under pytest-xdist the workers cannot write to the terminal: each worker keeps its
counts in a small JSON file (``ProgressFile``), and the controller reads them a few
times a second and draws one note for the whole run (``WorkerProgress``), cleared
before each line xdist writes so the two never mix.
"""

from __future__ import annotations

import json
import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

if TYPE_CHECKING:
    from ..engine.results import CaseResult

CLEAR_TO_END = "\x1b[K"
#: Seconds between two redraws (the last case always redraws).
INTERVAL_S = 0.2
MIN_ROOM = 16


class _Tally:
    """Counts the cases of the variant being evaluated; ``_show`` is called at most
    once per ``interval`` (and for the last case), ``_hide`` when the variant is done."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, interval: float = INTERVAL_S) -> None:
        self._clock, self._interval = clock, interval
        self._lock = threading.Lock()
        self._label, self._total, self._done, self._errors, self._cached = "", 0, 0, 0, 0
        self._spent, self._last = 0.0, float("-inf")

    def started(self, scenario: str, variant: str, total: int) -> None:
        with self._lock:
            self._label, self._total = f"{scenario}/{variant}", total
            self._done = self._errors = self._cached = 0
            self._spent, self._last = 0.0, float("-inf")
            self._show()

    def case_done(self, result: "CaseResult") -> None:
        with self._lock:
            self._done += 1
            self._errors += result.error is not None
            self._cached += result.cached
            self._spent += result.usage.cost_usd
            if self._done >= self._total or self._clock() - self._last >= self._interval:
                self._show()

    def finished(self) -> None:
        with self._lock:
            self._hide()

    def text(self) -> str:
        """The note as it reads now."""
        return (
            f"[llmopt {self._label}: {self._done}/{self._total} cases, {self._errors} errors, "
            f"{self._cached} cached, ${self._spent:.4f}]"
        )

    def _show(self) -> None:
        raise NotImplementedError

    def _hide(self) -> None:
        raise NotImplementedError


class Progress(_Tally):
    """Draws the note of one process's evaluation on its terminal."""

    def __init__(
        self,
        write: Callable[[str], None],
        room: Callable[[], int],
        clock: Callable[[], float] = time.monotonic,
        interval: float = INTERVAL_S,
    ) -> None:
        super().__init__(clock, interval)
        self._note = _Note(write, room)

    def _show(self) -> None:
        if self._note.draw(self.text()):
            self._last = self._clock()

    def _hide(self) -> None:
        self._note.clear()


class ProgressFile(_Tally):
    """An xdist worker's counts, written to ``path`` for the controller to draw."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.monotonic, interval: float = INTERVAL_S) -> None:
        super().__init__(clock, interval)
        self.path = path

    def _show(self) -> None:
        self._last = self._clock()
        self._store(active=True)

    def _hide(self) -> None:
        self._store(active=False)

    def _store(self, active: bool) -> None:
        state = {"label": self._label, "total": self._total, "done": self._done, "errors": self._errors,
                 "cached": self._cached, "spent": self._spent, "active": active}
        partial = self.path.with_name(self.path.name + ".tmp")
        try:
            partial.write_text(json.dumps(state), encoding="utf-8")
            os.replace(partial, self.path)  # the controller never reads half a file
        except OSError:
            pass  # progress is a courtesy: a full disk must not fail the evaluation


class WorkerProgress:
    """The controller's note for the variants its xdist workers are evaluating, read
    from the workers' progress files in ``folder`` by a background thread."""

    def __init__(
        self, folder: Path, write: Callable[[str], None], room: Callable[[], int], interval: float = INTERVAL_S
    ) -> None:
        self.folder = folder
        self._note = _Note(write, room)
        self._interval = interval
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._drawn: str | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="llmopt-progress", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop redrawing and clear the note."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        with self._lock:
            self._note.clear()

    @contextmanager
    def quiet(self) -> Iterator[None]:
        """No note while the body writes to the terminal (it is cleared first and
        redrawn on the next tick)."""
        with self._lock:
            self._note.clear()
            yield

    def text(self) -> str | None:
        """The note for the workers busy now, or None when none is."""
        busy = []
        for path in sorted(self.folder.glob("*.json")):
            try:
                state = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if state.get("active"):
                busy.append((path.stem, state))
        if not busy:
            return None
        parts = [f"{worker} {state['label']} {state['done']}/{state['total']}" for worker, state in busy]
        errors = sum(int(state["errors"]) for _, state in busy)
        cached = sum(int(state["cached"]) for _, state in busy)
        spent = sum(float(state["spent"]) for _, state in busy)
        return f"[llmopt {' | '.join(parts)} | {errors} errors, {cached} cached, ${spent:.4f}]"

    def tick(self) -> None:
        """Redraw once (the thread calls this every ``interval``)."""
        text = self.text()
        with self._lock:
            if text is None:
                self._note.clear()
            elif text != self._drawn or not self._note.shown:
                self._note.draw(text)
            self._drawn = text

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.tick()


class _Note:
    """One note drawn after the current line's text, the cursor put back after it."""

    def __init__(self, write: Callable[[str], None], room: Callable[[], int]) -> None:
        self._write, self._room = write, room
        self.shown = False

    def draw(self, text: str) -> bool:
        room = self._room() - 2
        if room < MIN_ROOM:
            return False
        note = " " + text
        if len(note) > room:
            note = note[: room - 2] + "…]"
        self.shown = True
        self._write(f"{CLEAR_TO_END}{note}\x1b[{len(note)}D")
        return True

    def clear(self) -> None:
        if self.shown:
            self._write(CLEAR_TO_END)
            self.shown = False


def terminal_progress(config: Any, mode: str) -> Progress | None:
    """A Progress drawing on pytest's terminal, or None when it should stay quiet:
    mode ``off``; ``auto`` off a terminal or under -qq; an xdist worker (see
    ``ProgressFile``)."""
    if hasattr(config, "workerinput"):
        return None
    terminal = _terminal(config, mode)
    return Progress(*terminal) if terminal is not None else None


def worker_progress(config: Any, mode: str) -> WorkerProgress | None:
    """The xdist controller's note for its workers' progress files (in a new temporary
    folder), or None when the controller's terminal should stay quiet (as for
    ``terminal_progress``)."""
    terminal = _terminal(config, mode)
    if terminal is None:
        return None
    import tempfile

    return WorkerProgress(Path(tempfile.mkdtemp(prefix="llmopt-progress-")), *terminal)


def _terminal(config: Any, mode: str) -> tuple[Callable[[str], None], Callable[[], int]] | None:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if mode == "off" or reporter is None:
        return None
    if mode == "auto" and (not reporter.isatty or config.get_verbosity() < -1):
        return None
    writer = config.get_terminal_writer()

    def write(text: str) -> None:
        writer.write_raw(text, flush=True)

    def room() -> int:
        return int(writer.fullwidth) - int(writer.width_of_current_line)

    return write, room
