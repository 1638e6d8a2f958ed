"""The looks ledger: how many different winners were confirmed on one test split.

Every confirmation is a look at the locked test split; a second winner confirmed on
the same split has been chosen knowing how the first fared, and its confirmation is
then no longer a clean one. The ledger (SQLite, beside the response cache) keeps one
row per (scenario, test-split fingerprint, winner identity): a rerun of the same
confirmation is the same look, a different winner is the next one.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import LLMOptError

if TYPE_CHECKING:
    from ..dataset import Case

__all__ = ["Look", "LooksLedger", "split_fingerprint"]

_SCHEMA = """CREATE TABLE IF NOT EXISTS looks (
    scenario TEXT NOT NULL, split TEXT NOT NULL, winner TEXT NOT NULL, at REAL NOT NULL,
    PRIMARY KEY (scenario, split, winner))"""


def split_fingerprint(cases: Sequence["Case"]) -> str:
    """A digest of the test cases (ids and every field), order-free."""
    rows = sorted(json.dumps([c.id, dict(c.fields), c.expected], sort_keys=True, default=str) for c in cases)
    return hashlib.sha256("\n".join(rows).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Look:
    """This confirmation's look (1 for the first winner on the split) and the total."""

    number: int
    total: int

    @property
    def clean(self) -> bool:
        return self.number == 1


class LooksLedger:
    """The confirmations recorded for a project (a SQLite file)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=30)
        db.execute(_SCHEMA)
        return db

    def earlier(self, scenario: str, split: str, winner: str) -> int:
        """How many other winners were confirmed on this split before."""
        with closing(self._connect()) as db:
            rows = db.execute("SELECT winner FROM looks WHERE scenario=? AND split=?", (scenario, split)).fetchall()
        return sum(1 for (found,) in rows if found != winner)

    def record(self, scenario: str, split: str, winner: str) -> Look:
        """Record the confirmation of ``winner`` (once) and return its look."""
        with closing(self._connect()) as db, db:
            db.execute("INSERT OR IGNORE INTO looks VALUES (?, ?, ?, ?)", (scenario, split, winner, time.time()))
            rows = db.execute(
                "SELECT winner FROM looks WHERE scenario=? AND split=? ORDER BY at, winner", (scenario, split)
            ).fetchall()
        order = [found for (found,) in rows]
        return Look(order.index(winner) + 1, len(order))

    def refuse_stale(self, scenario: str, split: str, winner: str) -> None:
        """``confirm.fresh``: an error when another winner was confirmed on this split."""
        count = self.earlier(scenario, split, winner)
        if count:
            raise LLMOptError(
                f"search.confirm.fresh: {count} other winner(s) were already confirmed on this test split "
                f"(fingerprint {split}), so a confirmation on it is no longer a first look: give the search new "
                "test cases (add cases, or change task.split's seed) or drop fresh to see it as look "
                f"{count + 1} (ledger: {self.path})"
            )
