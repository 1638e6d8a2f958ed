"""Fine-tuning: training data from a spec, validation, the leakage check, jobs that
end in a spec.

``training_set`` renders a variant's training cases (``task.train`` or the training
part of ``task.split``) as chat examples; ``validate_examples`` checks them and
estimates tokens and cost; ``find_leaks`` finds training inputs that equal or nearly
equal evaluation inputs; ``write_model_id`` writes a fine-tuned model id into a spec,
keeping its comments.
"""

from ._examples import ChatExample, TrainingSet, case_text, training_set
from ._file import read_training_file
from ._leaks import Leak, find_leaks, normalize_text
from ._spec_edit import write_model_id
from ._validate import ValidationReport, estimate_tokens, training_prices, validate_examples

__all__ = [
    "ChatExample",
    "Leak",
    "TrainingSet",
    "ValidationReport",
    "case_text",
    "estimate_tokens",
    "find_leaks",
    "normalize_text",
    "read_training_file",
    "training_prices",
    "training_set",
    "validate_examples",
    "write_model_id",
]
