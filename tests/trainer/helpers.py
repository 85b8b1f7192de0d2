"""Tiny models, tokenizers, datasets and configs for the trainer tests (CPU, seconds)."""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path

WORDS = (
    "red", "green", "blue", "yellow", "black", "white", "orange", "purple", "pink", "brown",
    "cat", "dog", "bird", "fish", "horse", "cow", "sheep", "goat", "lion", "tiger",
    "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
)
COLOURS = WORDS[:10]
ANSWERS = {c: f"the {c} one is number {WORDS[20 + i]}" for i, c in enumerate(COLOURS)}
SPECIALS = ["<unk>", "<pad>", "<s>", "</s>", "<|user|>", "<|assistant|>", "<|system|>"]


def build_tokenizer(folder: Path):
    """The colour tokenizer of the trainer tests (see word_level_tokenizer)."""
    corpus = [" ".join(WORDS), "the is number which one say colour", *ANSWERS.values(),
              "what is : ? . , ! a an and of to in for"]
    return word_level_tokenizer(folder, corpus, SPECIALS)


def word_level_tokenizer(folder: Path, corpus: list[str], specials: list[str]):
    """A word-level tokenizer over a small vocabulary, trained in well under a second and
    saved to `folder` like a model's tokenizer."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    tokenizer.train_from_iterator(corpus, trainers.WordLevelTrainer(special_tokens=specials))
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="<unk>",
                                   pad_token="<pad>", bos_token="<s>", eos_token="</s>")
    fast.save_pretrained(folder)
    return fast


def build_tiny_llama(folder: Path, vocab_size: int, seed: int = 0, hidden: int = 64,
                     layers: int = 2) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab_size, hidden_size=hidden, intermediate_size=2 * hidden,
        num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
        bos_token_id=2, eos_token_id=3, pad_token_id=1, tie_word_embeddings=False,
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


def colour_chats(count: int, seed: int = 0) -> list[dict]:
    """Chat rows whose assistant answer is a function of the colour asked about."""
    rng = random.Random(seed)
    rows = []
    for index in range(count):
        colour = rng.choice(COLOURS)
        filler = " ".join(rng.choice(WORDS[10:20]) for _ in range(rng.randint(0, 12)))
        messages = [{"role": "user", "content": f"which one is {colour} ? {filler} {index}"},
                    {"role": "assistant", "content": ANSWERS[colour]}]
        if index % 3 == 0:
            messages.insert(0, {"role": "system", "content": "say the number"})
        rows.append({"messages": messages})
    return rows


def write_jsonl(path: Path, rows: list) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


BASE_CONFIG = {
    "jobName": "test-job",
    "namespace": "default",
    "model": {"uri": "", "task": "causal-lm"},
    "dataset": {"uri": "", "format": None, "fields": {}, "validation": {"splitRatio": 0.1},
                "cleaning": {"dropEmpty": True, "dropDuplicates": True, "maxTokens": None,
                             "overLength": "truncate"}},
    "method": {"type": "lora", "lora": {"r": 8, "alpha": 16, "dropout": 0.05,
                                        "targetModules": ["all-linear"]}},
    "hyperparameters": {
        "epochs": 0, "maxSteps": 30, "learningRate": 0.005, "batchSize": 4,
        "gradientAccumulationSteps": 1, "maxSeqLength": 128, "packing": True,
        "lrScheduler": "constant", "warmupRatio": 0.0, "weightDecay": 0.0, "precision": "auto",
        "gradientCheckpointing": False, "seed": 7, "evalEverySteps": 10, "earlyStopping": None,
        "optimizer": "adamw",
    },
    "output": {"uri": "", "mergeAdapter": True},
    "checkpointing": {"everySteps": 0, "keep": 2},
    "resources": {"gpus": 0, "nodes": 1},
}


def make_config(model_dir: Path, data_uri: str, output_dir: Path, **sections) -> dict:
    """A TrainerConfig dict (wire format); `sections` are merged into the named sections."""
    config = copy.deepcopy(BASE_CONFIG)
    config["model"]["uri"] = f"file://{model_dir}"
    config["dataset"]["uri"] = data_uri
    config["output"]["uri"] = f"file://{output_dir}"
    for name, values in sections.items():
        if isinstance(values, dict) and isinstance(config.get(name), dict):
            config[name].update(values)
        else:
            config[name] = values
    return config


def load(config: dict):
    from kubetune.api import TrainerConfig

    return TrainerConfig.model_validate(config)


def colour_feedback(count: int, seed: int = 0) -> list[dict]:
    """Feedback rows on the colour task, as users of a deployed model would leave them: the
    right number for a colour is liked (5 or thumbs up), a wrong one disliked (1-2 or thumbs
    down), some with a correction, some as explicit chosen/rejected pairs. Every row has its
    own prompt (a running index), so pairs never repeat."""
    rng = random.Random(seed)
    numbers = WORDS[20:30]
    rows = []
    for index in range(count):
        colour = rng.choice(COLOURS)
        prompt = f"which one is {colour} ? {index}"
        right = ANSWERS[colour]
        wrong = f"the {colour} one is number {rng.choice([n for n in numbers if n not in right])}"
        kind = index % 3
        if kind == 0:
            rows.append({"prompt": prompt, "chosen": right, "rejected": wrong})
        elif kind == 1:
            rows.append({"prompt": prompt, "response": wrong, "rating": rng.choice([1, 2, False]),
                         "correction": right})
        else:
            rows += [{"prompt": prompt, "response": right, "rating": rng.choice([5, "up"])},
                     {"prompt": prompt, "response": wrong, "rating": "down"}]
    return rows
