"""The run's shared budget ledger: made once by the controller, added to by workers."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from llmopt.engine.budget import Budget, FileLedger
from llmopt.errors import BudgetExceeded, LLMOptError


def test_workers_add_to_the_one_ledger_the_controller_made(tmp_path: Path) -> None:
    path = tmp_path / "spend.sqlite"
    FileLedger(path, create=True).close()
    workers = [FileLedger(path) for _ in range(4)]

    def spend(ledger: FileLedger) -> None:
        for _ in range(50):
            ledger.add(0.01)

    threads = [threading.Thread(target=spend, args=(ledger,)) for ledger in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert workers[0].spent() == pytest.approx(2.0)
    budget = Budget(1.5, workers[1])
    with pytest.raises(BudgetExceeded, match=r"budget of \$1\.5000 is used up \(\$2\.0000 spent"):
        asyncio.run(budget.hold("spec.yaml [s::v] case 'a'", 0.0))
    for ledger in workers:
        ledger.close()


def test_a_ledger_that_was_never_made_is_a_clear_error(tmp_path: Path) -> None:
    ledger = FileLedger(tmp_path / "spend.sqlite")
    with pytest.raises(LLMOptError, match=r"budget ledger .*spend\.sqlite cannot be used \(no such table: spend\)"):
        ledger.spent()
    ledger.close()
