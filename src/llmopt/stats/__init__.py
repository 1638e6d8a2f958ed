"""Statistics of results: intervals of aggregates, paired comparisons, gates, power."""

from ._gate import POWER, Power, holm, holm_level, margin_passes, power, superiority_passes
from ._intervals import (
    SEED,
    Interval,
    bootstrap_interval,
    cluster_se,
    is_binary,
    mean_interval,
    t_interval,
    wilson,
    z_value,
)
from ._repeats import REDUCERS, consistency, reduce_scores
from ._paired import (
    Paired,
    agresti_min,
    mcnemar_p,
    paired_binary,
    paired_bootstrap,
    paired_cluster_t,
    paired_means,
    paired_t,
)

__all__ = [
    "POWER",
    "REDUCERS",
    "SEED",
    "Interval",
    "Paired",
    "Power",
    "agresti_min",
    "bootstrap_interval",
    "cluster_se",
    "consistency",
    "holm",
    "holm_level",
    "is_binary",
    "margin_passes",
    "mcnemar_p",
    "mean_interval",
    "paired_binary",
    "paired_bootstrap",
    "paired_cluster_t",
    "paired_means",
    "paired_t",
    "power",
    "reduce_scores",
    "superiority_passes",
    "t_interval",
    "wilson",
    "z_value",
]
