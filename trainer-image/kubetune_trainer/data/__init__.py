"""Data preparation: read, parse, clean, tokenize, pack. See prepare.py for the pipeline."""

from .labels import LabelMapping, build_label_mapping
from .prepare import DataSpec, PreparedData, load_examples, prepare_data

__all__ = ["DataSpec", "LabelMapping", "PreparedData", "build_label_mapping", "load_examples",
           "prepare_data"]
