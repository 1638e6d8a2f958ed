"""Rendering cost of the reports on a large run: 2 variants x 10,000 cases.

Prints the HTML and Markdown render times against writing the same results as JSON
(the floor: every report has to walk the document at least once), and the sizes.
"""

from __future__ import annotations

import json
import time
from typing import Any

CASES = 10_000


def _doc() -> dict[str, Any]:
    def case(i: int, ok: bool) -> dict[str, Any]:
        return {"id": f"c{i}", "input": f"question {i} " * 8, "expected": "yes", "output": ("yes" if ok else "no") * 20,
                "scores": {"contains": float(ok)}, "error": None, "latency_s": 0.2, "cached": 0,
                "retrieved": [{"id": f"d{i}#0", "doc_id": f"d{i}.md", "score": 0.5}], "usage": {}}

    def variant(rate: int) -> dict[str, Any]:
        cases = [case(i, i % rate != 0) for i in range(CASES)]
        return {"n": CASES, "errors": 0, "metrics": {"contains": {"value": 0.5, "n": CASES, "ci": [0.49, 0.51]}},
                "usage": {"calls": CASES}, "identity": {"provider": "echo"}, "cases": cases}

    assertions = [{"id": "x", "variant": "rag", "metric": "contains", "outcome": "passed", "observed": 0.9,
                   "expected": ">= base + 0.1", "delta": 0.4, "vs": "base", "message": ""}]
    return {"llmopt": 1, "scenarios": [{"scenario": "big", "spec": "specs/big.yaml",
                                         "variants": {"base": variant(2), "rag": variant(10)}, "assertions": assertions}]}


def _time(label: str, fn: Any) -> tuple[float, int]:
    started = time.perf_counter()
    text = fn()
    took = time.perf_counter() - started
    print(f"{label:10s} {took * 1000:8.1f} ms  {len(text) / 1e6:6.2f} MB")
    return took, len(text)


def main() -> None:
    from llmopt.report._markdown import render_markdown
    from llmopt.report._page import render_html

    doc = _doc()
    base, _ = _time("json", lambda: json.dumps(doc))
    html, _ = _time("html", lambda: render_html(doc))
    md, _ = _time("markdown", lambda: render_markdown(doc))
    print(f"html / json = {html / base:.1f}x; markdown / json = {md / base:.2f}x")


if __name__ == "__main__":
    main()
