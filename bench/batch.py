"""Batch-mode benchmark: 10,000 requests through OpenAI's Batch API (the real SDK)
against the loopback fake of the test suite, run in its own process, which ends each
batch DELAY (20) seconds after it is created (a real provider takes minutes).

    python bench/batch.py

Prints, as ratios to the targets:
- a clean ``pytest --llmopt-batch`` run: wall time against twice the fake's processing
  delay (the rest is starting pytest, rendering and submitting 10,000 requests, reading
  the output file and evaluating from the cache, which alone is what a warm rerun
  takes: printed beside it), and the run's peak memory (300 MB);
- an interrupted run (killed once its batch is recorded) and the run that resumes it:
  requests the fake received more than once (0), batches created (1);
- the cost of the batch calls against the synchronous price of the same tokens (0.5).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
N, DELAY = 10_000, 20.0
PRICE = {"input": 2.0, "output": 4.0}  # USD per million tokens (sync); batch: half

FAKE = """
import sys, time
sys.path.insert(0, sys.argv[1])
from fakes.batch_servers import FakeOpenAIBatch
with FakeOpenAIBatch(delay=float(sys.argv[2])) as fake:
    print(fake.base_url, flush=True)
    sys.stdin.read()
"""
# pytest in process, printing its own peak memory (ru_maxrss, KB on Linux) at the end.
PYTEST = """
import resource, sys, pytest
code = pytest.main(sys.argv[1:])
print("MAXRSS_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, flush=True)
sys.exit(code)
"""
SPEC = """\
llmopt: 1
scenario: bulk
task: {{dataset: cases.jsonl, id: id, expected: expected}}
recipe: {{system: Answer in one word ({tag})., template: "Question {{{{ id }}}}: {{{{ question }}}}"}}
model: {{provider: openai, id: bench-model, base_url: "{base_url}", price: {price}, params: {{max_tokens: 16}}, concurrency: 64}}
assertions:
  - {{metric: contains, min: 0.99}}
"""


def project(folder: Path, base_url: str, tag: str) -> None:
    (folder / "specs").mkdir(parents=True)
    (folder / "pytest.ini").write_text("[pytest]\nllmopt_cache_dir = .llmopt/cache\n")
    rows = (json.dumps({"id": f"q{i}", "question": f"what is item {i} called", "expected": "called"}) for i in range(N))
    (folder / "specs" / "cases.jsonl").write_text("\n".join(rows) + "\n")
    (folder / "specs" / "bulk.yaml").write_text(SPEC.format(base_url=base_url, price=json.dumps(PRICE), tag=tag))


def pytest_run(folder: Path, *args: str) -> tuple[float, float, str]:
    """(wall seconds, peak MB, output) of one pytest process."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", PYTEST, "-q", "-p", "no:cacheprovider", "specs", *args],
        cwd=folder, capture_output=True, text=True, env=_env(),
    )
    wall = time.perf_counter() - started
    rss = [line.split()[1] for line in done.stdout.splitlines() if line.startswith("MAXRSS_KB")]
    return wall, int(rss[0]) / 1024 if rss else 0.0, done.stdout + done.stderr


def interrupted_run(folder: Path) -> None:
    """Start a batch run and kill it (SIGINT, as Ctrl-C) once its batch is recorded."""
    proc = subprocess.Popen(
        [sys.executable, "-c", PYTEST, "-q", "-p", "no:cacheprovider", "specs", "--llmopt-batch"],
        cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env(),
    )
    ledger = folder / ".llmopt" / "cache" / "batches.sqlite3"
    while not _recorded(ledger):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=60)


def _recorded(ledger: Path) -> bool:
    if not ledger.exists():
        return False
    try:
        with sqlite3.connect(ledger) as db:
            return bool(db.execute("SELECT count(*) FROM batches").fetchone()[0])
    except sqlite3.Error:
        return False


def _env() -> dict[str, str]:
    return {**os.environ, "OPENAI_API_KEY": "sk-bench-0123456789abcdef", "PYTHONPATH": str(ROOT / "src")}


def stats(base_url: str) -> dict[str, int]:
    with urllib.request.urlopen(base_url + "/_stats") as answer:
        return json.loads(answer.read())


def usage(folder: Path) -> dict[str, float]:
    doc = json.loads((folder / "r.json").read_text())
    return doc["scenarios"][0]["variants"]["default"]["usage"]


def line(name: str, value: float, target: float, unit: str, good: bool) -> None:
    ratio = value / target if target else 0.0
    print(f"{name:<58} {value:10.2f} {unit} / target {target:g} {unit} = {ratio:5.2f}  {'ok' if good else 'MISSED'}")


def main() -> int:
    fake = subprocess.Popen(
        [sys.executable, "-c", FAKE, str(ROOT / "tests"), str(DELAY)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert fake.stdout is not None and fake.stdin is not None
    base_url = fake.stdout.readline().strip()
    try:
        with tempfile.TemporaryDirectory() as clean, tempfile.TemporaryDirectory() as resumed:
            project(Path(clean), base_url, "clean")
            wall, peak, out = pytest_run(Path(clean), "--llmopt-batch", "--llmopt-json=r.json")
            if "1 passed" not in out:
                print(out)
                return 1
            found = usage(Path(clean))
            warm, _, _ = pytest_run(Path(clean))
            line(f"clean batch run of {N} requests: wall / the fake's delay", wall, DELAY * 2, "s", wall <= DELAY * 2)
            print(f"{'':<58} ({wall - DELAY:.2f} s beyond the {DELAY:g} s the fake takes to process the batch; "
                  f"a warm rerun from the cache takes {warm:.2f} s, so batch mode adds {wall - DELAY - warm:.2f} s)")
            line("peak memory of the pytest process", peak, 300, "MB", peak <= 300)
            sync_cost = (found["input_tokens"] * PRICE["input"] + found["output_tokens"] * PRICE["output"]) / 1e6
            share = found["cost_usd"] / sync_cost
            line("cost of the batch calls / synchronous price of their tokens", share, 0.5, "", abs(share - 0.5) < 1e-9)
            print(f"{'':<58} (${found['cost_usd']:.6f} for {found['batch_calls']} batch calls; sync ${sync_cost:.6f})")
            before = stats(base_url)
            project(Path(resumed), base_url, "resumed")
            interrupted_run(Path(resumed))
            wall2, peak2, out2 = pytest_run(Path(resumed), "--llmopt-batch", "--llmopt-json=r.json")
            after = stats(base_url)
            sent = after["batch_requests"] - before["batch_requests"]
            twice = after["twice"]
            line("interrupted + resumed: requests sent twice", twice, 0, "", twice == 0 and "1 passed" in out2)
            print(f"{'':<58} ({sent} requests in {after['batches'] - before['batches']} batch(es), "
                  f"{after['sync_requests']} synchronous; resumed run {wall2:.2f} s, {peak2:.0f} MB)")
    finally:
        fake.stdin.close()
        fake.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
