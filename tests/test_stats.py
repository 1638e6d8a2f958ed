"""The statistics behind the gates, validated by simulation (vectorized: the same
functions the gates call, a thousand simulated runs at a time)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from llmopt.stats import (
    FewClustersWarning,
    agresti_min,
    bootstrap_interval,
    cluster_se,
    holm,
    holm_level,
    mcnemar_p,
    mean_interval,
    paired_binary,
    paired_bootstrap,
    paired_means,
    power,
    superiority_passes,
    t_interval,
    unchanged_gain_low,
    unchanged_margin_n,
    wilson,
)

RUNS = 1000
#: Three Monte Carlo standard errors of a rate near 5% over RUNS runs.
TOLERANCE = 3 * math.sqrt(0.05 * 0.95 / RUNS)


def binary_gate(mine: np.ndarray, theirs: np.ndarray, confidence: float = 0.95, min_delta: float = 0.0) -> np.ndarray:
    """The confidence gate of a binary delta for every simulated run (rows)."""
    better = np.sum(mine > theirs, axis=1)
    worse = np.sum(mine < theirs, axis=1)
    low, _, _ = agresti_min(better, worse, mine.shape[1], confidence)
    return superiority_passes(low, mcnemar_p(better, worse), min_delta, 1 - confidence)


def t_gate(mine: np.ndarray, theirs: np.ndarray, confidence: float = 0.95) -> np.ndarray:
    """The confidence gate of a paired t delta for every simulated run (rows)."""
    from scipy.stats import t

    mean, se, low, _ = t_interval(mine - theirs, confidence)
    p = 2 * t.sf(np.abs(mean / se), mine.shape[1] - 1)
    return superiority_passes(low, p, 0.0, 1 - confidence)


def test_binary_delta_gate_between_equal_variants_passes_at_most_5_percent() -> None:
    rng = np.random.default_rng(1)
    mine, theirs = (rng.random((RUNS, 200)) < 0.7 for _ in range(2))
    rate = binary_gate(mine.astype(float), theirs.astype(float)).mean()
    assert rate <= 0.05 + TOLERANCE


def test_continuous_delta_gate_between_equal_variants_passes_at_most_5_percent() -> None:
    rng = np.random.default_rng(2)
    mine, theirs = (rng.beta(2, 3, (RUNS, 50)) for _ in range(2))
    assert t_gate(mine, theirs).mean() <= 0.05 + TOLERANCE


def test_true_lift_of_015_on_200_binary_cases_passes_at_least_90_percent() -> None:
    rng = np.random.default_rng(3)
    theirs = rng.random((RUNS, 200)) < 0.7
    mine = rng.random((RUNS, 200)) < 0.85
    assert binary_gate(mine.astype(float), theirs.astype(float)).mean() >= 0.90


def test_min_delta_gate_fails_a_lift_smaller_than_asked() -> None:
    rng = np.random.default_rng(4)
    theirs = rng.random((RUNS, 200)) < 0.7
    mine = rng.random((RUNS, 200)) < 0.75
    assert binary_gate(mine.astype(float), theirs.astype(float), min_delta=0.1).mean() <= 0.05 + TOLERANCE


def test_wilson_intervals_cover_the_true_rate_93_to_97_percent() -> None:
    rng = np.random.default_rng(5)
    hits = (rng.random((RUNS, 200)) < 0.7).sum(axis=1)
    low, high = wilson(hits, 200)
    assert 0.93 <= np.mean((low <= 0.7) & (0.7 <= high)) <= 0.97


def test_t_intervals_cover_the_true_mean_93_to_97_percent() -> None:
    rng = np.random.default_rng(6)
    _, _, low, high = t_interval(rng.beta(2, 5, (RUNS, 40)))
    truth = 2 / 7
    assert 0.93 <= np.mean((low <= truth) & (truth <= high)) <= 0.97


def test_paired_binary_intervals_cover_the_true_delta_93_to_97_percent() -> None:
    rng = np.random.default_rng(7)
    theirs = rng.random((RUNS, 200)) < 0.7
    mine = rng.random((RUNS, 200)) < 0.8
    low, high, _ = agresti_min(np.sum(mine & ~theirs, axis=1), np.sum(~mine & theirs, axis=1), 200)
    assert 0.93 <= np.mean((low <= 0.1) & (0.1 <= high)) <= 0.97


def test_wilson_matches_the_textbook_value() -> None:
    low, high = wilson(7, 10)
    assert (float(low), float(high)) == pytest.approx((0.3968, 0.8922), abs=1e-4)


def test_mean_interval_picks_wilson_for_binary_and_t_otherwise() -> None:
    binary = mean_interval([1.0, 0.0, 1.0, 1.0])
    assert binary.method == "wilson" and binary.low is not None and binary.low < 0.75 < binary.high
    scores = mean_interval([0.2, 0.4, 0.9, 0.5])
    assert scores.method == "t" and scores.se == pytest.approx(np.std([0.2, 0.4, 0.9, 0.5], ddof=1) / 2)


def test_clustered_errors_are_wider_when_clusters_agree_inside() -> None:
    values = [1.0] * 10 + [0.0] * 10
    plain = mean_interval(values)
    with pytest.warns(FewClustersWarning):
        grouped = mean_interval(values, clusters=["a"] * 10 + ["b"] * 10)
    assert grouped.method == "cluster" and grouped.clusters == 2
    assert grouped.se is not None and plain.se is not None and grouped.se > plain.se


def test_mcnemar_exact_p_value() -> None:
    # 5 discordant pairs, all one way: 2 * 0.5**5
    assert paired_binary([1.0] * 5 + [0.0] * 3, [0.0] * 8).p_value == pytest.approx(0.0625)
    assert paired_binary([1.0, 0.0], [1.0, 0.0]).p_value == 1.0


def test_paired_binary_interval_stays_within_the_range_of_a_difference() -> None:
    every_pair_better = paired_binary([1.0] * 6, [0.0] * 6)
    assert every_pair_better.delta == 1.0
    assert every_pair_better.low == pytest.approx(0.75 - 1.959964 * math.sqrt(2.5) / 8, abs=1e-4)
    assert every_pair_better.high == 1.0
    every_pair_worse = paired_binary([0.0] * 6, [1.0] * 6)
    assert every_pair_worse.low == -1.0


def test_paired_means_choose_the_test_by_the_scores() -> None:
    assert paired_means([1.0, 0.0, 1.0], [0.0, 0.0, 1.0]).test == "mcnemar-exact"
    assert paired_means([0.5, 0.2, 1.0], [0.1, 0.2, 0.4]).test == "paired-t"
    with pytest.warns(FewClustersWarning):
        assert paired_means([1.0, 0.0, 1.0], [0.0, 0.0, 1.0], clusters=["a", "b", "b"]).test == "paired-cluster-t"


def test_bootstrap_is_seeded_and_brackets_the_value() -> None:
    data = [0.1, 0.5, 0.9, 0.4, 0.7, 0.3]
    first = bootstrap_interval(data, lambda xs: float(np.median(xs)))
    again = bootstrap_interval(data, lambda xs: float(np.median(xs)))
    assert first == again and first.method == "bootstrap"
    assert first.low is not None and first.high is not None and first.low <= first.value <= first.high


def test_paired_bootstrap_p_value_of_a_clear_gain() -> None:
    mine, theirs = np.linspace(0.5, 1.0, 30), np.linspace(0.0, 0.5, 30)
    result = paired_bootstrap(lambda idx: float(np.median(mine[idx]) - np.median(theirs[idx])), 30)
    assert result.delta == pytest.approx(0.5) and result.p_value is not None and result.p_value < 0.01


def test_holm_adjusts_step_down() -> None:
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm_level([0.01, 0.04, 0.03], 0, 0.95) == pytest.approx(1 - 0.05 / 3)
    assert holm_level([0.01, 0.04, 0.03], 1, 0.95) == pytest.approx(0.95)


def test_power_says_how_many_cases_a_margin_needs() -> None:
    result = power(se=0.1, n=20, confidence=0.95, margin=0.1)
    assert result.mde == pytest.approx(0.2802, abs=1e-3)
    assert result.underpowered and result.needed_n == math.ceil(20 * (result.mde / 0.1) ** 2)
    assert not power(se=0.01, n=200, confidence=0.95, margin=0.1).underpowered
    assert power(se=0.1, n=20, confidence=0.95, margin=0.0).needed_n is None


def clustered_runs(rng: np.random.Generator, clusters: int = 40, size: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Binary scores whose rate varies by cluster (truth: 0.7 on average)."""
    rates = np.clip(0.7 + rng.normal(0.0, 0.2, (RUNS, clusters, 1)), 0.0, 1.0)
    scores = (rng.random((RUNS, clusters, size)) < rates).reshape(RUNS, clusters * size).astype(float)
    return scores, np.repeat(np.arange(clusters), size)


def test_cluster_robust_intervals_cover_where_plain_ones_do_not() -> None:
    rng = np.random.default_rng(8)
    scores, groups = clustered_runs(rng)
    truth = float(np.mean(np.clip(0.7 + rng.normal(0.0, 0.2, 2_000_000), 0.0, 1.0)))
    grouped = [mean_interval(list(row), clusters=list(groups)) for row in scores]
    covered = np.mean([i.low <= truth <= i.high for i in grouped])
    low, high = wilson(scores.sum(axis=1), scores.shape[1])
    plain = np.mean((low <= truth) & (truth <= high))
    assert 0.93 <= covered <= 0.97
    assert plain < 0.93


def test_negative_min_delta_tolerates_a_loss_without_a_significant_test() -> None:
    assert bool(superiority_passes(-0.03, 0.8, -0.05, 0.05))
    assert not bool(superiority_passes(-0.06, 0.8, -0.05, 0.05))
    assert not bool(superiority_passes(0.01, 0.2, 0.0, 0.05))


# -- few clusters, bounded metrics, identical scores (issue 14, items 4 and 5) ----------


def test_three_balanced_clusters_do_not_give_a_zero_width_interval() -> None:
    # Every cluster's mean is the overall mean: CR1 said se = 0, interval [0.5, 0.5].
    values = [1.0, 0.0] * 6
    with pytest.warns(FewClustersWarning, match="only 3 clusters"):
        grouped = mean_interval(values, clusters=["a"] * 4 + ["b"] * 4 + ["c"] * 4)
    plain = mean_interval(values)
    assert grouped.se is not None and plain.se is not None and grouped.se >= plain.se > 0
    assert grouped.low is not None and grouped.high is not None and grouped.high - grouped.low > 0.3


def test_cluster_se_is_cr2_and_never_below_the_plain_one() -> None:
    values = np.array([0.9, 0.8, 1.0, 0.1, 0.2, 0.3, 0.5])
    groups = ["a", "a", "a", "b", "b", "b", "c"]
    mean, se, count = cluster_se(values, groups)
    sums = {g: sum(v - mean for v, h in zip(values, groups, strict=True) if h == g) for g in "abc"}
    sizes = {"a": 3, "b": 3, "c": 1}
    cr2 = math.sqrt(sum(sums[g] ** 2 / (1 - sizes[g] / 7) for g in "abc")) / 7
    assert count == 3 and se == pytest.approx(max(cr2, np.std(values, ddof=1) / math.sqrt(7)))


def test_few_clusters_never_push_a_bounded_interval_past_its_range() -> None:
    values = [1.0, 1.0, 0.9, 1.0, 1.0, 0.6, 1.0, 1.0, 1.0]
    with pytest.warns(FewClustersWarning):
        grouped = mean_interval(values, clusters=["a"] * 3 + ["b"] * 3 + ["c"] * 3)
    assert grouped.low is not None and grouped.high is not None
    assert 0.0 <= grouped.low and grouped.high <= 1.0


def test_ten_clusters_or_more_give_no_warning() -> None:
    rng = np.random.default_rng(3)
    values = list(rng.random(40))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mean_interval(values, clusters=[i % 10 for i in range(40)])


def test_a_mean_of_scores_in_0_1_has_its_interval_in_0_1() -> None:
    # precision_at_k of a few cases, mostly perfect: the t interval reached 1.131.
    scores = [1.0, 1.0, 0.5, 1.0, 1.0, 0.3333]
    found = mean_interval(scores)
    assert found.method == "t" and found.low is not None and found.high is not None
    assert 0.0 <= found.low < found.value < found.high <= 1.0
    assert found.high == 1.0
    unbounded = mean_interval([s * 10 for s in scores])
    assert unbounded.high is not None and unbounded.high > 10.0


def test_paired_delta_of_scores_in_0_1_stays_in_minus_1_to_1() -> None:
    mine, theirs = [1.0, 0.95, 1.0, 0.9], [0.0, 0.1, 0.05, 0.0]
    found = paired_means(mine, theirs)
    assert found.test == "paired-t" and found.high == 1.0 and found.low is not None and found.low > 0.5


def test_identical_continuous_scores_get_an_interval_and_a_positive_mde() -> None:
    scores = [0.8, 0.5, 0.9, 0.7] * 6  # token_f1 of 24 cases, the same in both runs
    found = paired_means(scores, scores)
    assert found.low is not None and found.high is not None and found.low < 0.0 < found.high
    assert found.se == pytest.approx(1 / 26) and found.p_value == 1.0
    assert power(found.se, found.n, 0.95, 0.05).mde == pytest.approx((1.959964 + 0.841621) / 26, abs=1e-4)
    one = mean_interval([0.75] * 24)
    assert one.low is not None and one.high is not None and one.low < 0.75 < one.high


def test_identical_unbounded_scores_have_no_interval_rather_than_a_zero_width_one() -> None:
    same = [3.0, 5.0, 4.0]
    assert paired_means(same, same).se == pytest.approx(2.0 / 5)
    flat = paired_means([4.0] * 5, [4.0] * 5)
    assert flat.low is None and flat.se is None and flat.p_value == 1.0
    assert mean_interval([4.0] * 5).low is None


def test_identical_scores_interval_is_agresti_min_for_binary_and_continuous_alike() -> None:
    binary = paired_means([1.0, 0.0] * 12, [1.0, 0.0] * 12)
    continuous = paired_means([0.5, 0.25] * 12, [0.5, 0.25] * 12)
    assert binary.low == pytest.approx(continuous.low) == pytest.approx(unchanged_gain_low(24, 0.95))


def test_a_margin_gate_at_n24_cannot_pass_even_when_nothing_changed() -> None:
    level, drop = 0.95, 0.05
    assert unchanged_gain_low(24, level) < -drop
    needed = unchanged_margin_n(drop, level)
    assert needed == 38
    low, _, _ = agresti_min(0, 0, needed, level)
    assert float(low) >= -drop
    low, _, _ = agresti_min(0, 0, needed - 1, level)
    assert float(low) < -drop
