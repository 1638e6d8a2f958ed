"""Sharded runs merged into one honest verdict.

``pytest specs/ --llmopt-shard K/N --llmopt-json shard-K.json`` evaluates the cases
whose id hashes to shard K and writes every case record with the run's fingerprint;
``llmopt merge shard-*.json -o results.json`` checks that the files are every shard of
one run, rebuilds each variant from the union of their cases, and recomputes every
metric, interval, paired test, Holm family and stored-baseline comparison from them.
"""

from ._fingerprint import GATED, shard_doc
from ._merge import Merged, merge_shards
from ._shards import MergeRefused

__all__ = ["GATED", "Merged", "MergeRefused", "merge_shards", "shard_doc"]
