"""``python -m llmopt.cli``: the ``llmopt`` command."""

import sys

from . import main

sys.exit(main())
