"""Build the example's small causal language model, deterministically, offline, in seconds.

No small causal LM ships with the repository or a package, and weights are not committed, so
this script makes one: a word-level tokenizer over the example's vocabulary and a 2-layer
Llama (hidden size 64, about 0.1 M parameters) with seeded random weights, saved as a
Hugging Face model folder. Random weights know nothing: the base model prefers the right and
the wrong answer about equally, which is what the feedback -> DPO -> EvalJob loop then
changes.

    python examples/feedback-dpo/make_model.py            # writes examples/feedback-dpo/model/
    python examples/feedback-dpo/make_model.py --data     # also rewrites the two JSONL files

Run it before `kubetune local up`: the model folder is then in the examples claim at
pvc://kubetune-examples/feedback-dpo/model, where finetunejob.yaml looks for it.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
COLOURS = ("red", "green", "blue", "yellow", "black", "white", "orange", "purple", "pink",
           "brown")
NUMBERS = ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
ANSWERS = {colour: f"the {colour} one is number {NUMBERS[i]}" for i, colour in enumerate(COLOURS)}
SPECIALS = ["<unk>", "<pad>", "<s>", "</s>"]


def build_model(folder: Path, seed: int = 0) -> Path:
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    corpus = [" ".join(COLOURS + NUMBERS), "the is number which one what ? .",
              " ".join(str(i) for i in range(10))]
    tokenizer = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    tokenizer.train_from_iterator(corpus, trainers.WordLevelTrainer(special_tokens=SPECIALS))
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="<unk>",
                                   pad_token="<pad>", bos_token="<s>", eos_token="</s>")
    fast.save_pretrained(folder)
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(fast), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
        bos_token_id=2, eos_token_id=3, pad_token_id=1, tie_word_embeddings=False)
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


def feedback_rows(count: int, seed: int, question: str = "which one is {colour} ? {n}") -> list[dict]:
    """What users of a deployed colour bot might leave: thumbs and 1-5 ratings on answers,
    corrections of wrong answers, and explicit chosen/rejected pairs."""
    rng = random.Random(seed)
    rows = []
    for index in range(count):
        colour = rng.choice(COLOURS)
        prompt = question.format(colour=colour, n=index % 10)
        right = ANSWERS[colour]
        wrong = f"the {colour} one is number {rng.choice([n for n in NUMBERS if n not in right])}"
        kind = index % 3
        if kind == 0:
            rows.append({"prompt": prompt, "chosen": right, "rejected": wrong})
        elif kind == 1:
            rows.append({"prompt": prompt, "response": wrong, "rating": rng.choice([1, 2]),
                         "correction": right})
        else:
            rows += [{"prompt": prompt, "response": right, "rating": rng.choice([5, "up"])},
                     {"prompt": prompt, "response": wrong, "rating": "down"}]
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=HERE / "model")
    parser.add_argument("--data", action="store_true", help="rewrite feedback.jsonl and test.jsonl")
    args = parser.parse_args(argv)
    build_model(args.output)
    print(f"model: {args.output}")
    if args.data:
        write_jsonl(HERE / "feedback.jsonl", feedback_rows(240, seed=1))
        # Held out: the same facts asked in other words, so no test pair copies a training one.
        write_jsonl(HERE / "test.jsonl",
                    feedback_rows(60, seed=2, question="what number is {colour} ? {n}"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
