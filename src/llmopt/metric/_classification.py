"""Classification metrics: a label is extracted from the output and compared."""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from ._args import str_list_arg
from ._base import UNIT_RANGE, Sample
from ._case_metric import CaseMetric
from ._normalize import extract_label, normalize_label

__all__ = ["Accuracy", "F1Macro"]


class LabelMetric(CaseMetric):
    """Base of the label metrics: per case 1.0 when the predicted label is the expected one.

    The prediction is the output without surrounding quotes and punctuation; with
    ``args.labels`` it is the label named earliest in the output (whole word, any case),
    so a chatty ``"The sentiment is: Positive!"`` predicts ``positive``.
    """

    allowed_args = frozenset({"labels"})
    value_range = UNIT_RANGE

    def check_args(self, args: Mapping[str, Any]) -> list[str]:
        return super().check_args(args) + str_list_arg(self.name, args, "labels")

    def label_pair(self, sample: Sample, args: Mapping[str, Any]) -> tuple[str, str]:
        """The normalized (expected, predicted) labels of one sample."""
        expected = normalize_label(self.expected_text(sample))
        return expected, extract_label(sample.output, args.get("labels"))

    def score(self, sample: Sample, args: Mapping[str, Any]) -> float:
        expected, predicted = self.label_pair(sample, args)
        return float(expected == predicted)

    def label_lists(
        self, samples: Sequence[Sample], args: Mapping[str, Any]
    ) -> tuple[list[str], list[str]]:
        """The expected labels and the predicted labels of all samples."""
        pairs = [self.label_pair(sample, args) for sample in samples]
        return [e for e, _ in pairs], [p for _, p in pairs]


class Accuracy(LabelMetric):
    """Share of cases whose predicted label is the expected label."""

    name = "accuracy"
    description = "classification accuracy of the label extracted from the output"
    #: accuracy_score is the mean of the per-case 1/0 scores.
    aggregate_is_mean: bool | None = True

    def aggregate(
        self, samples: Sequence[Sample], scores: Sequence[float], args: Mapping[str, Any]
    ) -> float:
        if not samples:
            return math.nan
        from sklearn.metrics import accuracy_score

        expected, predicted = self.label_lists(samples, args)
        return float(accuracy_score(expected, predicted))


class F1Macro(LabelMetric):
    """Macro-averaged F1 over the classes; per case the score is 1/0 like accuracy.

    The classes are the expected labels plus the predicted ones. With ``args.labels``,
    a prediction that names no label is wrong for its case but adds no class of its own.
    """

    name = "f1_macro"
    description = "macro-averaged F1 of the label extracted from the output"

    def aggregate(
        self, samples: Sequence[Sample], scores: Sequence[float], args: Mapping[str, Any]
    ) -> float:
        if not samples:
            return math.nan
        from sklearn.metrics import f1_score

        expected, predicted = self.label_lists(samples, args)
        classes = _classes(expected, predicted, args.get("labels"))
        value = f1_score(expected, predicted, labels=classes, average="macro", zero_division=0)
        return float(value)


def _classes(expected: list[str], predicted: list[str], labels: Sequence[str] | None) -> list[str]:
    known = set(expected) | ({normalize_label(label) for label in labels} if labels else set(predicted))
    return sorted(set(expected) | (set(predicted) & known))
