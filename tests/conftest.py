"""Shared fixtures of llmopt's own tests."""

from __future__ import annotations

# In-process pytester runs drop the modules they imported when they end; a C extension
# cannot be imported twice in one process, so load these once for the whole session.
import numpy  # noqa: F401
import scipy.stats  # noqa: F401
import sklearn.metrics  # noqa: F401

pytest_plugins = ["pytester"]

# Spec fixtures are data for the loader tests, not specs of this test run.
collect_ignore_glob = ["specs/*", "specs/**/*"]
