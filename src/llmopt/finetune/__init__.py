"""Fine-tuning: training data from a spec, validation, the leakage check, jobs that
end in a spec.

``training_set`` renders a variant's training cases (``task.train`` or the training
part of ``task.split``) as chat examples; ``validate_examples`` checks them and
estimates tokens and cost; ``find_leaks`` finds training inputs that equal or nearly
equal evaluation inputs; ``write_model_id`` writes a fine-tuned model id into a spec,
keeping its comments. ``train_local`` trains a LoRA of a local GGUF model with the
``LoraSettings`` it is given (``llmopt finetune train``; needs ``llmopt[finetune-local]``).
"""

from ..dataset._leaks import Leak, find_leaks, normalize_text
from ._examples import ChatExample, TrainingSet, case_text, training_set
from ._file import read_training_file
from ._file_leaks import LeakageWarning, leak_warnings, training_file_leaks
from ._local import LocalRun, train_local
from ._lora_settings import LoraSettings, lora_settings
from ._spec_edit import write_model_id
from ._validate import ValidationReport, estimate_tokens, training_prices, validate_examples

__all__ = [
    "ChatExample",
    "Leak",
    "LeakageWarning",
    "LocalRun",
    "LoraSettings",
    "TrainingSet",
    "ValidationReport",
    "case_text",
    "estimate_tokens",
    "find_leaks",
    "leak_warnings",
    "lora_settings",
    "normalize_text",
    "read_training_file",
    "training_prices",
    "training_file_leaks",
    "train_local",
    "training_set",
    "validate_examples",
    "write_model_id",
]
