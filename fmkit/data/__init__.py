"""Layer 1: rows -> validated, tokenized, collated batches. Knows the tokenizer, never the model."""

from fmkit.data.labeled import LabeledTexts, read_labeled
from fmkit.data.readers import iter_texts, read_table
from fmkit.data.validate import ValidationReport, stratified_split, validate_classification

__all__ = [
    "LabeledTexts",
    "ValidationReport",
    "iter_texts",
    "read_labeled",
    "read_table",
    "stratified_split",
    "validate_classification",
]
