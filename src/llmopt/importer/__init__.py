"""Importers: other tools' eval configs as llmopt specs (``llmopt import promptfoo``)."""

from ._notes import Skipped
from ._nunjucks import Converted, to_jinja
from ._promptfoo import ImportResult, import_promptfoo
from ._source import ConfigError

__all__ = ["ConfigError", "Converted", "ImportResult", "Skipped", "import_promptfoo", "to_jinja"]
