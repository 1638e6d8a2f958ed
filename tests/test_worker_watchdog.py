"""xdist workers stop, and remove the run's temporary folders, when their controller is
killed (issue 14, item 16)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest
from fakes.openai_server import FakeOpenAI

from llmopt._watchdog import ControllerWatch, watch_controller

SPEC = """\
llmopt: 1
scenario: {name}
task:
  id: id
  expected: answer
  cases:
{cases}
recipe:
  template: "{{{{ question }}}}"
model:
  provider: openai
  id: gpt-4o-mini
  base_url: {base_url}
  concurrency: 2
assertions:
  - metric: exact_match
    min: 0.0
"""


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and _stat(int(entry.name))[1] == pid:
            found.append(int(entry.name))
    return found


def _stat(pid: int) -> tuple[str, int]:
    """(state, parent pid) of a process; ("X", 0) when it is gone."""
    try:
        fields = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return "X", 0
    return fields[0], int(fields[1])


def _alive(pid: int) -> bool:
    return _stat(pid)[0] not in ("X", "Z")


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(delay=0.2) as server:  # slow answers: the workers are mid-evaluation when killed
        yield server


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_stop_within_seconds_when_the_controller_is_killed(
    pytester: pytest.Pytester, fake: FakeOpenAI
) -> None:
    for name in ("first", "second"):
        rows = "".join(f'    - {{id: c{i}, question: "q {i}", answer: "q {i}"}}\n' for i in range(300))
        spec = SPEC.format(name=name, cases=rows.rstrip("\n"), base_url=fake.base_url)
        (pytester.path / "specs").mkdir(exist_ok=True)
        (pytester.path / "specs" / f"{name}.yaml").write_text(spec, encoding="utf-8")
    temp = pytester.path / "tmp"
    temp.mkdir()
    env = {**os.environ, "OPENAI_API_KEY": "sk-test-watchdog-0123456789abcdef", "TMPDIR": str(temp)}
    env.pop("OPENAI_BASE_URL", None)
    command = [sys.executable, "-m", "pytest", "specs", "-n", "2", "-p", "no:cacheprovider", "--llmopt-budget", "100",
               "--llmopt-progress", "on", "--llmopt-cache-dir", "c"]
    controller = subprocess.Popen(command, cwd=pytester.path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while fake.requests < 4 and time.monotonic() < deadline:  # both workers are calling
            time.sleep(0.05)
        workers = _children(controller.pid)
        assert len(workers) == 2, workers
        assert {p.name.split("-")[1] for p in temp.iterdir()} == {"budget", "progress"}  # the run's folders
        os.kill(controller.pid, signal.SIGKILL)
        controller.wait()
        killed = time.monotonic()
        while any(_alive(w) for w in workers) and time.monotonic() - killed < 10:
            time.sleep(0.05)
        stopped_after = time.monotonic() - killed
        calls_at_stop = fake.requests
    finally:
        for pid in _children(controller.pid) + [controller.pid]:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
    assert not any(_alive(w) for w in workers)
    assert stopped_after < 4, f"the workers took {stopped_after:.1f} s to stop"
    time.sleep(0.5)
    assert fake.requests == calls_at_stop  # no call after the workers stopped
    assert list(temp.iterdir()) == []  # the budget ledger and the progress files are gone


def test_the_watch_removes_the_folders_interrupts_then_exits(tmp_path: Path) -> None:
    folder = tmp_path / "llmopt-progress-x"
    folder.mkdir()
    (folder / "gw0.json").write_text("{}", encoding="utf-8")
    events: list[str] = []
    watch = ControllerWatch(
        os.getppid() + 1, [folder], poll_s=0.01, grace_s=0.05,
        interrupt=lambda: events.append("interrupt"), exit=lambda: events.append("exit"),
    )
    watch.start()
    deadline = time.monotonic() + 5
    while "exit" not in events and time.monotonic() < deadline:
        time.sleep(0.01)
    assert events == ["interrupt", "exit"] and not folder.exists()


def test_the_watch_does_nothing_while_the_controller_lives(tmp_path: Path) -> None:
    events: list[str] = []
    watch = ControllerWatch(os.getppid(), [tmp_path], poll_s=0.01, interrupt=lambda: events.append("interrupt"))
    watch.start()
    time.sleep(0.1)
    watch.stop()
    assert events == [] and tmp_path.exists()


def test_outside_an_xdist_worker_nothing_is_watched() -> None:
    class Config:  # a controller's or a plain run's config: no workerinput
        pass

    assert watch_controller(Config()) is None  # type: ignore[arg-type]
