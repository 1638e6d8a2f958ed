"""Local model benchmark: how the embedded model runs, measured side by side in one process.

    python bench/local.py [--rounds 3]

Two comparisons on the help desk's own prompts (the demo's questions, with and without
a retrieved policy page, as ``specs/helpdesk.yaml`` sends them), each run in turns so
a noisy machine slows both sides alike:

- **precision**: the shipped Q4_1 file against its Q8_0 copy (both with and without
  flash attention), seconds per call and greedy answers in common;
- **fidelity**: how close each conversion stays to the shipped weights, as the mean
  KL divergence of the next-token distributions and the share of positions whose most
  likely token agrees, over the policy pages read as text; Q4_0 and IQ4_NL (faster,
  4-bit) are shown for contrast;
- **sharing**: the local provider answering every question of the demo (bare and with
  its policy page) one call at a time, against all of them in flight at once, so that
  greedy answers are decoded side by side: seconds per round, the ratio, and how many
  answers are the same (all of them, or shared decoding is broken).

``--sharing`` runs only the last comparison (no conversions).

Needs ``llmopt[local]`` and numpy. Converted files go to a temporary folder.
"""

from __future__ import annotations

import argparse
import ctypes
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
POLICIES = ROOT / "data" / "helpdesk" / "policies"
QUESTIONS = ROOT / "data" / "helpdesk" / "questions.jsonl"
SYSTEM = "You are the Nimbus Notes support assistant. Answer with the facts from the context, in one short sentence."
#: llama.cpp's file types for the conversions compared.
FTYPES = {"Q8_0": 7, "Q4_0": 2, "IQ4_NL": 25}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="turns of every prompt on every side")
    parser.add_argument("--sharing", action="store_true", help="only compare one call at a time with shared decoding")
    args = parser.parse_args()
    try:
        import llama_cpp
        import numpy  # noqa: F401
    except ImportError:
        print("needs llmopt[local] and numpy", file=sys.stderr)
        return 2
    from llmopt.provider._gguf import default_model_path

    logging.getLogger("llama-cpp-python").setLevel(logging.ERROR)
    if args.sharing:
        _sharing(args.rounds)
        return 0
    shipped = default_model_path()
    with tempfile.TemporaryDirectory(prefix="llmopt-bench-local-") as tmp:
        files = {"Q4_1 (shipped)": shipped}
        for name, ftype in FTYPES.items():
            files[name] = _convert(llama_cpp, shipped, Path(tmp) / f"{name}.gguf", ftype)
        prompts = _prompts()
        print(f"{len(prompts)} prompts from {QUESTIONS.relative_to(ROOT)}, {args.rounds} rounds, 24 tokens at most")
        _precision(files, prompts, args.rounds)
        _fidelity(files)
    _sharing(args.rounds)
    return 0


def _convert(llama_cpp: Any, source: Path, target: Path, ftype: int) -> Path:
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype, params.allow_requantize = ftype, True
    if llama_cpp.llama_model_quantize(str(source).encode(), str(target).encode(), ctypes.byref(params)) != 0:
        raise SystemExit(f"could not convert to file type {ftype}")
    return target


def _prompts(count: int = 6) -> list[list[dict[str, str]]]:
    import json

    pages = {p.stem: p.read_text(encoding="utf-8") for p in sorted(POLICIES.glob("*.md"))}
    rows = [json.loads(line) for line in QUESTIONS.read_text(encoding="utf-8").splitlines() if line.strip()][:count]
    prompts = []
    for row in rows:
        page = pages.get(Path(str((row.get("relevant") or [""])[0])).stem, next(iter(pages.values())))
        prompts.append([{"role": "user", "content": row["question"]}])
        prompts.append([
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": f"Context:\n{page[:900]}\n\nQuestion: {row['question']}"},
        ])
    return prompts


def _load(path: Path, flash: bool = False, **kw: Any) -> Any:
    from llama_cpp import Llama

    return Llama(model_path=str(path), n_ctx=2048, flash_attn=flash, verbose=False, **kw)


def _answer(llama: Any, messages: list[dict[str, str]]) -> str:
    llama.reset()
    out = llama.create_chat_completion(messages=messages, temperature=0.0, max_tokens=24, seed=0)
    return str(out["choices"][0]["message"]["content"])


def _precision(files: dict[str, Path], prompts: list[list[dict[str, str]]], rounds: int) -> None:
    sides = {
        "Q4_1 (shipped)": _load(files["Q4_1 (shipped)"]),
        "Q4_1 + flash_attn": _load(files["Q4_1 (shipped)"], flash=True),
        "Q8_0": _load(files["Q8_0"]),
        "Q8_0 + flash_attn (default)": _load(files["Q8_0"], flash=True),
    }
    seconds: dict[str, list[float]] = {name: [] for name in sides}
    answers: dict[str, list[str]] = {name: [] for name in sides}
    for r in range(rounds):
        for messages in prompts:
            for name, llama in sides.items():
                start = time.perf_counter()
                text = _answer(llama, messages)
                seconds[name].append(time.perf_counter() - start)
                if r == 0:
                    answers[name].append(text)
    base = statistics.fmean(seconds["Q4_1 (shipped)"])
    print("\nprecision (seconds per call, side by side)")
    for name in sides:
        same = sum(a == b for a, b in zip(answers[name], answers["Q4_1 (shipped)"], strict=True))
        mean = statistics.fmean(seconds[name])
        print(f"  {name:28} {mean:.3f} s  x{mean / base:.2f}  answers as shipped: {same}/{len(prompts)}")


def _fidelity(files: dict[str, Path]) -> None:
    import numpy as np

    texts = [p.read_text(encoding="utf-8")[:900] for p in sorted(POLICIES.glob("*.md"))]

    def distributions(path: Path) -> list[Any]:
        llama = _load(path, flash=True, logits_all=True, n_threads=2)
        found = []
        for text in texts:
            tokens = llama.tokenize(text.encode())[:220]
            llama.reset()
            llama.eval(tokens)
            logits = np.array(llama.scores[: len(tokens)], dtype=np.float64)
            logits -= logits.max(axis=1, keepdims=True)
            probs = np.exp(logits)
            found.append(probs / probs.sum(axis=1, keepdims=True))
        return found

    reference = distributions(files["Q4_1 (shipped)"])
    print("\nfidelity to the shipped weights (next-token distributions over the policy pages)")
    for name, path in files.items():
        if path == files["Q4_1 (shipped)"]:
            continue
        kl, top = [], []
        for p, q in zip(reference, distributions(path), strict=True):
            kl.append(float(np.mean(np.sum(p * (np.log(p + 1e-12) - np.log(q + 1e-12)), axis=1))))
            top.append(float(np.mean(p.argmax(axis=1) == q.argmax(axis=1))))
        print(f"  {name:8} KL {statistics.fmean(kl):.4f}  top-1 agreement {statistics.fmean(top):.3f}")


def _sharing(rounds: int) -> None:
    import asyncio

    from llmopt.dataset._case import Case
    from llmopt.provider import LocalProviderType, Request
    from llmopt.spec._model import ModelSpec

    ptype = LocalProviderType()
    provider = ptype.create(ModelSpec(provider="local"), ROOT)
    model = ptype.model(provider.run_path(), None, provider.runtime())
    requests = [
        Request(messages=m, prompt=m[-1]["content"], case=Case(id=str(i)), params={"max_tokens": 24})
        for i, m in enumerate(_prompts(count=100))
    ]

    async def together() -> list[Any]:
        gate = asyncio.Semaphore(provider.concurrency)

        async def one(request: Request) -> Any:
            async with gate:
                return await provider.generate(request)

        return await asyncio.gather(*(one(r) for r in requests))

    seconds: dict[str, list[float]] = {"one at a time": [], "shared": []}
    texts: dict[str, list[str]] = {}
    for _ in range(rounds):
        start = time.perf_counter()
        texts["one at a time"] = [provider._complete(model, r).text for r in requests]
        seconds["one at a time"].append(time.perf_counter() - start)
        start = time.perf_counter()
        texts["shared"] = [r.text for r in asyncio.run(together())]
        seconds["shared"].append(time.perf_counter() - start)
    alone, shared = (statistics.median(seconds[k]) for k in ("one at a time", "shared"))
    same = sum(a == b for a, b in zip(texts["one at a time"], texts["shared"], strict=True))
    print(f"\nsharing ({len(requests)} demo prompts, {provider.concurrency} in flight, median of {rounds} rounds in turns)")
    print(f"  one at a time  {alone:6.2f} s")
    print(f"  shared         {shared:6.2f} s  x{shared / alone:.2f}  same answers: {same}/{len(requests)}")


if __name__ == "__main__":
    sys.exit(main())
