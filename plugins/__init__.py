"""Project-local llmopt plugins of this repository (loaded through ``llmopt_plugins``)."""
