"""Tiny models, datasets and EvalConfigs for the evaluator tests (CPU, seconds)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from tests.trainer.helpers import word_level_tokenizer
from tests.trainer.helpers import write_jsonl as write_jsonl  # shared with the evaluator tests

ANIMALS = ("cat", "dog", "bird", "fish", "horse", "cow")
NUMBERS = ("one", "two", "three", "four", "five", "six")
ANSWERS = {animal: f"the {animal} is number {NUMBERS[i]}" for i, animal in enumerate(ANIMALS)}
SPECIALS = ["<unk>", "<pad>", "<s>", "</s>"]


def build_tokenizer(folder: Path):
    """A word-level tokenizer over the animal vocabulary, trained in well under a second."""
    corpus = [" ".join(ANIMALS + NUMBERS), "the is number which one a an what ? . , !",
              "<|user|> <|assistant|> <|system|>"]
    return word_level_tokenizer(folder, corpus, SPECIALS)


def build_tiny_llama(folder: Path, vocab_size: int, seed: int = 0) -> Path:
    """A randomly initialised 2-layer Llama: meaningless answers, exact arithmetic."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
        bos_token_id=2, eos_token_id=3, pad_token_id=1, tie_word_embeddings=False,
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


def completion_rows(count: int) -> list[dict]:
    rows = []
    for index in range(count):
        animal = ANIMALS[index % len(ANIMALS)]
        # Prompts of different lengths, so that batches need padding.
        prompt = "which one is " + " ".join([animal] * (1 + index % 4)) + " ?"
        rows.append({"prompt": prompt, "completion": ANSWERS[animal]})
    return rows


BASE_CONFIG = {
    "jobName": "test-eval",
    "namespace": "default",
    "task": "causal-lm",
    "model": {"uri": ""},
    "dataset": {"uri": "", "fields": {}, "limit": 0},
    "metrics": ["loss", "perplexity", "exactMatch", "tokenF1", "rougeL"],
    "average": "macro",
    "generation": {"maxNewTokens": 8, "batchSize": 4},
    "thresholds": {},
    "gpus": 0,
}


def eval_config(model_uri: str, data_uri: str, output_dir: Path | None = None,
                **overrides) -> dict:
    """An EvalConfig dict (wire format); `overrides` replace top-level keys."""
    config = copy.deepcopy(BASE_CONFIG)
    config["model"]["uri"] = model_uri
    config["dataset"]["uri"] = data_uri
    if output_dir is not None:
        config["outputUri"] = f"file://{output_dir}"
    config.update(overrides)
    return config


def load(config: dict):
    from kubetune.api import EvalConfig

    return EvalConfig.model_validate(config)


def write_config(path: Path, config: dict) -> Path:
    path.write_text(json.dumps(config))
    return path


QUICKSTART_LABELS = ("account_access", "billing", "delivery", "product_quality",
                     "technical_support")


def build_tiny_classifier(folder: Path, tokenizer_from: Path, labels: tuple[str, ...],
                          seed: int = 0, head: bool = True) -> Path:
    """A 1-layer BERT classifier (random weights) with MiniLM's tokenizer and `labels` saved
    the way the trainer saves them; head=False saves a base model without a classifier."""
    import torch
    from kubetune_trainer.data.labels import LabelMapping
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification, BertModel

    torch.manual_seed(seed)
    mapping = LabelMapping(tuple(labels))
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=128,
                        id2label=mapping.id2label, label2id=mapping.label2id)
    model = BertForSequenceClassification(config) if head else BertModel(config)
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(tokenizer_from).save_pretrained(folder)
    if head:
        mapping.save(folder)
    return folder


def classification_config(model_uri: str, data_uri: str, output_dir: Path | None = None,
                          **overrides) -> dict:
    return eval_config(model_uri, data_uri, output_dir, task="sequence-classification",
                       metrics=["accuracy", "precision", "recall", "f1"], **overrides)
