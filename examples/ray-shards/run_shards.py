"""Run the specs as N shards in Ray tasks, then merge them into one verdict.

    pip install "llmopt[ray]"
    python run_shards.py                 # 4 shards on a local Ray (ray.init())
    python run_shards.py --shards 16 --address auto   # on a running Ray cluster

Each task runs ``pytest specs/ --llmopt-shard=K/N --llmopt-json=...`` in a fresh
process in this folder (on a cluster, Ray's ``runtime_env`` ships the folder to the
workers) and returns the shard's results JSON as text, so the driver needs no shared
disk. The driver writes them under ``shards/`` and runs ``llmopt merge``, whose exit
status (0 pass, 1 fail, 2 refused) is this script's.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run_shard(k: int, n: int, folder: str = str(HERE)) -> tuple[int, int, str, str]:
    """Shard ``k`` of ``n``: (k, pytest's exit status, the results JSON, pytest's output)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"shard-{k}.json"
        command = [sys.executable, "-m", "pytest", "specs", f"--llmopt-shard={k}/{n}", f"--llmopt-json={out}", "-q"]
        run = subprocess.run(command, cwd=folder, capture_output=True, text=True)
        return k, run.returncode, out.read_text(encoding="utf-8") if out.is_file() else "", run.stdout + run.stderr


def save(results: list[tuple[int, int, str, str]], folder: Path) -> list[Path]:
    """Write each shard's results JSON under ``folder/shards``; stop on a shard that
    wrote none (pytest could not run: a usage or collection problem)."""
    shards = folder / "shards"
    shards.mkdir(exist_ok=True)
    paths = []
    for k, status, text, output in sorted(results):
        if not text:
            sys.exit(f"shard {k} wrote no results (pytest exit status {status}):\n{output}")
        path = shards / f"shard-{k}.json"
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths


def merge(paths: list[Path], folder: Path) -> int:
    """``llmopt merge`` of the shards: the whole run's results, reports and exit status."""
    from llmopt.cli import main as llmopt

    out = folder / "reports"
    args = ["merge", *map(str, paths), "-o", str(out / "results.json"), "--junitxml", str(out / "junit.xml")]
    return llmopt([*args, "--report", str(out / "report.html"), "--rootdir", str(folder)])


def run_on_ray(n: int, address: str | None = None, local_mode: bool = False) -> int:
    """Every shard as a Ray task, then the merge (on this machine)."""
    import ray

    ray.init(address=address, local_mode=local_mode, runtime_env={"working_dir": str(HERE)} if address else None)
    try:
        task = ray.remote(run_shard)
        results = ray.get([task.remote(k, n, str(HERE) if not address else ".") for k in range(1, n + 1)])
    finally:
        ray.shutdown()
    return merge(save(results, HERE), HERE)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shards", type=int, default=4, help="how many shards (4)")
    parser.add_argument("--address", help="a Ray cluster's address (default: start Ray on this machine)")
    parser.add_argument("--local-mode", action="store_true", help="Ray's local mode: every task in this process")
    args = parser.parse_args(argv)
    return run_on_ray(args.shards, args.address, args.local_mode)


if __name__ == "__main__":
    sys.exit(main())
