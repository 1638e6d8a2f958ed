"""The progress note on its own: counting, throttling, clearing."""

from __future__ import annotations

from pathlib import Path

from llmopt.engine.results import CaseResult, Usage
from llmopt.report import Progress, ProgressFile, WorkerProgress


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _progress(room: int = 200) -> tuple[Progress, list[str], Clock]:
    written: list[str] = []
    clock = Clock()
    return Progress(written.append, lambda: room, clock=clock, interval=1.0), written, clock


def test_counts_cases_errors_cache_hits_and_spend() -> None:
    progress, written, clock = _progress()
    progress.started("faq", "rag", 3)
    progress.case_done(CaseResult(id="a", cached=1, usage=Usage(cost_usd=0.25)))
    clock.now = 2.0
    progress.case_done(CaseResult(id="b", error="timeout", usage=Usage(cost_usd=0.5)))
    progress.case_done(CaseResult(id="c"))  # the last case always redraws
    assert progress.text() == "[llmopt faq/rag: 3/3 cases, 1 errors, 1 cached, $0.7500]"
    assert len(written) == 3 and written[-1].startswith("\x1b[K [llmopt faq/rag: 3/3")
    assert written[-1].endswith(f"\x1b[{len(' ' + progress.text())}D")  # the cursor goes back
    progress.finished()
    assert written[-1] == "\x1b[K"


def test_redraws_are_throttled() -> None:
    progress, written, clock = _progress()
    progress.started("faq", "rag", 100)
    for _ in range(50):
        progress.case_done(CaseResult(id="x"))
    assert len(written) == 1  # only the start: no time has passed
    clock.now = 1.5
    progress.case_done(CaseResult(id="x"))
    assert len(written) == 2 and "51/100" in written[-1]


def test_stays_quiet_without_room() -> None:
    progress, written, _ = _progress(room=10)
    progress.started("faq", "rag", 1)
    progress.case_done(CaseResult(id="x"))
    progress.finished()
    assert written == []


def test_a_worker_writes_its_counts_for_the_controller(tmp_path: Path) -> None:
    clock = Clock()
    gw0 = ProgressFile(tmp_path / "gw0.json", clock=clock, interval=1.0)
    gw0.started("faq", "rag", 3)
    gw0.case_done(CaseResult(id="a", cached=1, usage=Usage(cost_usd=0.25)))  # throttled: not written yet
    gw1 = ProgressFile(tmp_path / "gw1.json", clock=clock, interval=0.0)
    gw1.started("routing", "recipe", 20)
    gw1.case_done(CaseResult(id="t1", error="timeout"))
    written: list[str] = []
    controller = WorkerProgress(tmp_path, written.append, lambda: 200)
    assert controller.text() == (
        "[llmopt gw0 faq/rag 0/3 | gw1 routing/recipe 1/20 | 1 errors, 0 cached, $0.0000]"
    )
    clock.now = 2.0
    gw0.case_done(CaseResult(id="b"))
    controller.tick()
    assert written[-1].startswith("\x1b[K [llmopt gw0 faq/rag 2/3 | gw1 routing/recipe 1/20 | 1 errors, 1 cached, $0.2500]")
    controller.tick()
    assert len(written) == 1  # nothing changed: no redraw
    gw1.finished()
    gw0.finished()
    controller.tick()
    assert controller.text() is None and written[-1] == "\x1b[K"  # no worker busy: the note is cleared


def test_the_controller_note_keeps_out_of_the_way_of_terminal_writes(tmp_path: Path) -> None:
    ProgressFile(tmp_path / "gw0.json").started("faq", "rag", 3)
    (tmp_path / "gw1.json").write_text("{half a fi", encoding="utf-8")  # unreadable files are skipped
    written: list[str] = []
    controller = WorkerProgress(tmp_path, written.append, lambda: 200)
    controller.tick()
    assert written == ["\x1b[K [llmopt gw0 faq/rag 0/3 | 0 errors, 0 cached, $0.0000]\x1b[55D"]
    with controller.quiet():
        written.append(".")  # what pytest writes meanwhile
    assert written[1:] == ["\x1b[K", "."]
    controller.tick()
    assert written[-1].startswith("\x1b[K [llmopt gw0")  # redrawn after the write
    controller.stop()
    assert written[-1] == "\x1b[K"
