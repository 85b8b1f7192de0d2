"""Loading the model under test and its baseline onto the evaluation device.

Loading itself is the trainer's (`kubetune_trainer.models.load_for_inference`): a merged or
full model folder, an hf:// repo, or an adapter folder applied to its base model.

The baseline of a classifier is usually a base model with no head for these labels (the
MiniLM a FinetuneJob started from). It is loaded with the finetuned model's label mapping, so
both models predict into the same label space, and its fresh head is initialised under a fixed
seed: two evaluations of the same baseline give the same numbers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from ..data.labels import LabelMapping
from ..errors import InvalidConfig
from ..models import ADAPTER_CONFIG, load_for_inference, load_model, load_tokenizer, model_source

log = logging.getLogger(__name__)

BASELINE_HEAD_SEED = 0


@dataclass
class LoadedModel:
    uri: str
    model: object
    tokenizer: object
    mapping: LabelMapping | None
    note: str = ""  # how it was loaded, when that is worth saying in the report
    fresh_head: bool = False  # a classifier head with no trained weights: chance, not a baseline

    @property
    def max_length(self) -> int:
        """Longest input the model takes (positions), capped by the tokenizer's own limit."""
        limits = [getattr(self.model.config, "max_position_embeddings", None),
                  getattr(self.tokenizer, "model_max_length", None)]
        # Tokenizers without a limit report a huge sentinel (int(1e30)).
        usable = [int(v) for v in limits if isinstance(v, int) and 0 < v < 10**7]
        return min(usable) if usable else 2048


def choose_device(gpus: int) -> torch.device:
    if gpus > 0 and torch.cuda.is_available():
        return torch.device("cuda")
    if gpus > 0:
        log.warning("config asks for %d GPU(s) but CUDA is not available: evaluating on CPU", gpus)
    return torch.device("cpu")


def inference_dtype(device: torch.device) -> torch.dtype:
    """16-bit weights on GPU (half the memory, same argmax in practice); fp32 on CPU, where
    16-bit matmuls are slower, not faster."""
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def _ready(loaded: LoadedModel, device: torch.device) -> LoadedModel:
    if hasattr(loaded.model, "merge_and_unload"):
        # An adapter on its base: fold the LoRA weights in once, so that each forward pass is
        # the plain model's, without the adapter's extra matmuls in every adapted layer.
        loaded.model = loaded.model.merge_and_unload()
        loaded.note = loaded.note or "adapter merged into its base model in memory"
    loaded.model.to(device)
    loaded.model.eval()
    return loaded


def load_under_test(model_config, task: str, device: torch.device) -> LoadedModel:
    """The model being evaluated (`model_config` is a kubetune.api EvalModelConfig)."""
    model, tokenizer, mapping = load_for_inference(
        model_config.uri, task, base_uri=model_config.base_uri, dtype=inference_dtype(device))
    if task == "sequence-classification" and mapping is None:
        raise InvalidConfig(f"{model_config.uri} has no label mapping (label_mapping.json or "
                            "config.json id2label); cannot tell which class is which")
    return _ready(LoadedModel(model_config.uri, model, tokenizer, mapping), device)


def load_baseline(baseline_config, task: str, device: torch.device,
                  mapping: LabelMapping | None) -> LoadedModel:
    """The baseline, predicting into `mapping` (the model under test's labels) if a classifier."""
    if task != "sequence-classification":
        return load_under_test(baseline_config, task, device)
    uri = baseline_config.uri
    source = model_source(uri)
    folder = source.local_dir
    is_adapter = folder is not None and (folder / ADAPTER_CONFIG).exists()
    own = LabelMapping.load(folder) if folder is not None else None
    if is_adapter or (own is not None and set(own.names) == set(mapping.names)):
        # A classifier trained for these labels (another run, another method): use its head.
        loaded = load_under_test(baseline_config, task, device)
        if set(loaded.mapping.names) != set(mapping.names):
            raise InvalidConfig(f"baseline {uri} was trained for other labels "
                                f"({', '.join(loaded.mapping.names[:10])}) than the model")
        return loaded
    dtype = inference_dtype(device)
    tokenizer = load_tokenizer(uri, source)
    # Seeded right before loading: the fresh head is the only random part of the model.
    torch.manual_seed(BASELINE_HEAD_SEED)
    model = load_model(uri, task, label_mapping=mapping, dtype=dtype,
                       pad_token_id=tokenizer.pad_token_id, source=source)
    note = (f"loaded with the model's {len(mapping.names)} labels; a head without trained "
            f"weights is initialised with seed {BASELINE_HEAD_SEED}")
    return _ready(LoadedModel(uri, model, tokenizer, mapping, note, fresh_head=True), device)


def release(loaded: LoadedModel | None) -> None:
    """Free the model's memory before the next one is loaded (one model on the GPU at a time)."""
    if loaded is None:
        return
    loaded.model = None
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
