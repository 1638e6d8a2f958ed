"""A fake of OpenAI's files and fine-tuning endpoints on 127.0.0.1, for tests through
the real SDK.

``FakeFineTuning`` is a :class:`FakeOpenAI` (chat completions keep working) that also
serves ``POST /v1/files`` (multipart upload), ``POST /v1/fine_tuning/jobs``,
``GET /v1/fine_tuning/jobs/{id}`` and ``GET /v1/fine_tuning/jobs/{id}/events``. A
job moves one status further each time it is retrieved, through ``statuses``, and
ends as ``outcome``: ``succeeded`` (with a new ``ft:`` model id) or ``failed`` (with
``error``). A training file whose lines are not chat examples fails its job too.
``failures`` scripts server errors for the next requests.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any, Mapping
from urllib.parse import parse_qs, urlsplit

from .openai_server import FakeOpenAI, _error_body

__all__ = ["FakeFineTuning", "FAILED_ERROR"]

FAILED_ERROR = {
    "code": "invalid_training_file",
    "message": "The job failed due to an invalid training file: too many examples exceed the token limit.",
    "param": "training_file",
}
HYPERPARAMETERS = ("n_epochs", "batch_size", "learning_rate_multiplier")


@dataclass
class _Job:
    body: dict[str, Any]
    number: int
    statuses: list[str]
    step: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)


class FakeFineTuning(FakeOpenAI):
    """``with FakeFineTuning(outcome="failed") as fake: ... fake.base_url``."""

    def __init__(
        self,
        *,
        outcome: str = "succeeded",
        running_polls: int = 2,
        organization: str = "acme",
        accepted_key: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.accepted_key = accepted_key
        #: Statuses answered (with a 1 ms retry-after) to the next fine-tuning requests, in order.
        self.failures: list[int] = []
        self.outcome = outcome
        self.statuses = ["validating_files", "queued", *["running"] * running_polls]
        self.organization = organization
        self.files: dict[str, dict[str, Any]] = {}
        self.jobs: dict[str, _Job] = {}
        self.paths: list[str] = []
        self._ft_lock = threading.Lock()

    # -- routing ----------------------------------------------------------------------------

    def route(self, method: str, path: str, raw: bytes, headers: Mapping[str, str]) -> tuple[Any, ...] | None:
        url = urlsplit(path)
        parts = [p for p in url.path.split("/") if p]
        with self._ft_lock:
            self.paths.append(f"{method} {url.path}")
            if self.failures:
                status = self.failures.pop(0)
                body = _error_body("The server had an error while processing your request.", "server_error")
                return status, body, {"retry-after-ms": "1", "retry-after": "0"}
            key = headers.get("authorization", "").removeprefix("Bearer ").strip()
            if not key or (self.accepted_key is not None and key != self.accepted_key):
                message = f"Incorrect API key provided: {key}." if key else "No API key provided."
                return 401, _error_body(message, "invalid_request_error", "invalid_api_key")
            if method == "POST" and parts == ["v1", "files"]:
                return self._upload(raw, headers.get("content-type", ""))
            if parts[:3] != ["v1", "fine_tuning", "jobs"]:
                return None
            return self._jobs(method, parts[3:], raw, parse_qs(url.query))

    def _jobs(self, method: str, rest: list[str], raw: bytes, query: Mapping[str, list[str]]) -> tuple[int, Any] | None:
        if method == "POST" and not rest:
            return self._create(json.loads(raw or b"{}"))
        job = self.jobs.get(rest[0]) if rest else None
        if job is None:
            return 404, _error_body(f"No fine-tuning job found with id {rest[0] if rest else ''!r}.", "invalid_request_error")
        if method == "GET" and len(rest) == 1:
            self._advance(job)
            return 200, self._job_object(job)
        if method == "GET" and rest[1:] == ["events"]:
            limit = int(query.get("limit", ["20"])[0])
            return 200, {"object": "list", "data": list(reversed(job.events))[:limit], "has_more": False}
        return None

    # -- files ------------------------------------------------------------------------------

    def _upload(self, raw: bytes, content_type: str) -> tuple[int, Any]:
        form = _multipart(raw, content_type)
        if "file" not in form or form.get("purpose", (None, b""))[1] != b"fine-tune":
            return 400, _error_body("A file and purpose 'fine-tune' are required.", "invalid_request_error")
        name, data = form["file"]
        file_id = f"file-fake{len(self.files) + 1:04d}"
        self.files[file_id] = {"name": name, "data": data, "purpose": "fine-tune"}
        return 200, {
            "id": file_id,
            "object": "file",
            "bytes": len(data),
            "created_at": 1_700_000_000,
            "filename": name,
            "purpose": "fine-tune",
            "status": "processed",
        }

    # -- jobs -------------------------------------------------------------------------------

    def _create(self, body: dict[str, Any]) -> tuple[int, Any]:
        problem = self._create_problem(body)
        if problem is not None:
            return 400, _error_body(problem, "invalid_request_error")
        number = len(self.jobs) + 1
        job = _Job(body=body, number=number, statuses=[*self.statuses, self._outcome(body)])
        self.jobs[f"ftjob-fake{number:04d}"] = job
        self._event(job, "info", f"Created fine-tuning job: ftjob-fake{number:04d}")
        return 200, self._job_object(job)

    def _create_problem(self, body: Mapping[str, Any]) -> str | None:
        if not body.get("model"):
            return "Missing required parameter: 'model'."
        if body.get("training_file") not in self.files:
            return f"Invalid file ID: {body.get('training_file')!r}."
        hyper = _hyperparameters(body)
        unknown = sorted(set(hyper) - set(HYPERPARAMETERS))
        return f"Unknown hyperparameter(s): {', '.join(unknown)}." if unknown else None

    def _outcome(self, body: Mapping[str, Any]) -> str:
        lines = self.files[body["training_file"]]["data"].decode("utf-8").splitlines()
        valid = all("messages" in json.loads(line) for line in lines if line.strip())
        return self.outcome if valid else "failed"

    def _advance(self, job: _Job) -> None:
        if job.step >= len(job.statuses) - 1:
            return
        job.step += 1
        status = job.statuses[job.step]
        messages = {
            "queued": ("info", "Validated training file: " + job.body["training_file"]),
            "running": ("info", f"Step {job.step}/10: training loss=0.{9 - job.step}1"),
            "succeeded": ("info", f"New fine-tuned model created: {self._model_id(job)}"),
            "failed": ("error", FAILED_ERROR["message"]),
        }
        if status in messages:
            self._event(job, *messages[status])

    def _event(self, job: _Job, level: str, message: str) -> None:
        number = len(job.events) + 1
        job.events.append(
            {
                "id": f"ftevent-{job.number:04d}-{number:03d}",
                "object": "fine_tuning.job.event",
                "created_at": 1_700_000_000 + number,
                "level": level,
                "message": message,
                "type": "message",
            }
        )

    def _model_id(self, job: _Job) -> str:
        suffix = job.body.get("suffix") or ""
        return f"ft:{job.body['model']}:{self.organization}:{suffix}:fake{job.number:04d}"

    def _job_object(self, job: _Job) -> dict[str, Any]:
        status = job.statuses[job.step]
        done = status in ("succeeded", "failed")
        examples = len(self.files[job.body["training_file"]]["data"].splitlines())
        hyper = {"n_epochs": 3, "batch_size": 1, "learning_rate_multiplier": 1.8, **_hyperparameters(job.body)}
        return {
            "id": f"ftjob-fake{job.number:04d}",
            "object": "fine_tuning.job",
            "created_at": 1_700_000_000,
            "finished_at": 1_700_000_900 if done else None,
            "model": job.body["model"],
            "fine_tuned_model": self._model_id(job) if status == "succeeded" else None,
            "organization_id": f"org-{self.organization}",
            "result_files": [],
            "status": status,
            "training_file": job.body["training_file"],
            "validation_file": None,
            "hyperparameters": hyper,
            "trained_tokens": 100 * examples * int(hyper["n_epochs"]) if status == "succeeded" else None,
            "error": FAILED_ERROR if status == "failed" else None,
            "seed": job.body.get("seed", 42),
            "suffix": job.body.get("suffix"),
            "method": job.body.get("method"),
        }


def _hyperparameters(body: Mapping[str, Any]) -> dict[str, Any]:
    method = body.get("method") or {}
    supervised = method.get("supervised") or {} if isinstance(method, Mapping) else {}
    return dict(supervised.get("hyperparameters") or body.get("hyperparameters") or {})


def _multipart(raw: bytes, content_type: str) -> dict[str, tuple[str | None, bytes]]:
    """The fields of a multipart/form-data body: name -> (file name, bytes)."""
    message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + raw)
    fields: dict[str, tuple[str | None, bytes]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if isinstance(name, str):
            fields[name] = (part.get_filename(), part.get_payload(decode=True) or b"")
    return fields
