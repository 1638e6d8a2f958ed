"""The progress note on its own: counting, throttling, clearing."""

from __future__ import annotations

from llmopt.report import Progress
from llmopt.results import CaseResult, Usage


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
