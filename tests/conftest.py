"""Shared fixtures of llmopt's own tests."""

from __future__ import annotations

pytest_plugins = ["pytester"]

# Spec fixtures are data for the loader tests, not specs of this test run.
collect_ignore_glob = ["specs/*", "specs/**/*"]
