"""Load tokenizers and models from any kubetune URI; shared by the trainer and the evaluator.

    load_tokenizer(uri)                        tokenizer with a pad token and a chat template
    load_model(uri, task, ...)                 a base model for training (optionally 4-bit)
    add_lora(model, lora_spec, task)           wrap it with LoRA adapters (peft)
    load_for_inference(uri, task, base_uri)    a trained model: full/merged folder, or an
                                               adapter folder on top of its base model

hf:// repos are loaded by transformers itself (revision, HF_TOKEN, HF_HOME, HF_HUB_OFFLINE);
s3://, pvc:// and file:// are made local by `storage.fetch` first.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from . import storage
from .data.encode import ensure_chat_template, ensure_pad_token
from .data.labels import LabelMapping
from .errors import InvalidConfig, ModelNotFound

log = logging.getLogger(__name__)

METADATA_FILE = "kubetune.json"  # written next to adapters: which base model they belong to
ADAPTER_CONFIG = "adapter_config.json"


@dataclass(frozen=True)
class ModelSource:
    """What from_pretrained needs: a repo id or local folder, plus hub arguments."""

    name_or_path: str
    revision: str | None = None
    token: str | None = None

    @property
    def kwargs(self) -> dict:
        kwargs = {"revision": self.revision, "token": self.token}
        return {key: value for key, value in kwargs.items() if value}

    @property
    def local_dir(self) -> Path | None:
        path = Path(self.name_or_path)
        return path if path.is_dir() else None


def model_source(uri: str) -> ModelSource:
    parsed = storage.parse(uri)
    if parsed.scheme == "hf":
        return ModelSource(parsed.authority, parsed.revision, os.environ.get("HF_TOKEN") or None)
    try:
        path = storage.fetch(uri)
    except storage.NotFound as error:
        raise ModelNotFound(f"no model at {uri}") from error
    if path.is_file():
        raise ModelNotFound(f"{uri} is a file; a model URI must name a folder")
    return ModelSource(str(path))


def resolved_revision(model, source: ModelSource) -> str | None:
    """The commit the weights came from, not the revision asked for (a branch, a tag or
    none): for a hub repo, the cache snapshot from_pretrained read config.json from
    (huggingface_hub keeps one folder per commit, snapshots/COMMIT/, and refs/BRANCH naming
    it); config._commit_hash where transformers still records it; for a local folder that
    is itself a snapshot, its name; otherwise None."""
    commit = getattr(model.config, "_commit_hash", None)
    if commit:
        return commit
    local = source.local_dir
    if local is None:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(source.name_or_path, "config.json",
                                        revision=source.revision)
        local = Path(cached).parent if isinstance(cached, str) else None
    if local is not None and local.parent.name == "snapshots":
        return local.name
    return None


def _not_found(uri: str, error: Exception) -> ModelNotFound:
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return ModelNotFound(f"cannot load a model from {uri}: {first_line[:300]}")


def load_tokenizer(uri: str, source: ModelSource | None = None):
    from transformers import AutoTokenizer

    source = source or model_source(uri)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source.name_or_path, **source.kwargs)
    except (OSError, ValueError) as error:
        raise _not_found(uri, error) from error
    ensure_pad_token(tokenizer)
    ensure_chat_template(tokenizer)
    return tokenizer


def load_model(
    uri: str,
    task: str,
    *,
    label_mapping: LabelMapping | None = None,
    dtype=None,
    quantize_4bit: bool = False,
    pad_token_id: int | None = None,
    source: ModelSource | None = None,
):
    """The base model for `task`, in `dtype` (None: the checkpoint's own, as fp32 on CPU)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    source = source or model_source(uri)
    kwargs: dict = dict(source.kwargs)
    kwargs["dtype"] = dtype or torch.float32
    if quantize_4bit:
        kwargs["quantization_config"] = bnb_4bit_config(dtype)
        kwargs["device_map"] = {"": _local_cuda_device()}
    if task == "sequence-classification":
        if label_mapping is None:
            raise InvalidConfig("sequence-classification needs a label mapping")
        kwargs.update(
            num_labels=len(label_mapping.names),
            id2label=label_mapping.id2label,
            label2id=label_mapping.label2id,
            # A checkpoint trained with another head size gets a fresh head, not an error.
            ignore_mismatched_sizes=True,
        )
        factory = AutoModelForSequenceClassification
    else:
        factory = AutoModelForCausalLM
    try:
        model = factory.from_pretrained(source.name_or_path, **kwargs)
    except (OSError, ValueError) as error:
        if isinstance(error, ValueError) and "Unrecognized" not in str(error):
            raise
        raise _not_found(uri, error) from error
    if pad_token_id is not None and model.config.pad_token_id is None:
        # Classification heads on decoder models find the last real token by the pad id.
        model.config.pad_token_id = pad_token_id
    return model


def _local_cuda_device() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def bnb_4bit_config(compute_dtype):
    """QLoRA's quantization: NF4 with double quantization. GPU only (bitsandbytes)."""
    import torch

    if not torch.cuda.is_available():
        raise InvalidConfig("method qlora needs a GPU (bitsandbytes 4-bit); use lora on CPU")
    try:
        import bitsandbytes  # noqa: F401
    except ImportError as error:
        raise InvalidConfig("method qlora needs the bitsandbytes package in the image") from error
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=compute_dtype or torch.bfloat16,
    )


def add_lora(model, lora, task: str, *, quantized: bool = False, gradient_checkpointing=False):
    """Wrap `model` with LoRA adapters. `lora` has r, alpha, dropout, target_modules."""
    from peft import LoraConfig, TaskType, get_peft_model, prepare_model_for_kbit_training

    if quantized:
        model = prepare_model_for_kbit_training(
            model,
            use_gradient_checkpointing=gradient_checkpointing,
            gradient_checkpointing_kwargs={"use_reentrant": False},
        )
    targets = list(lora.target_modules)
    # peft spells "every linear layer except the head" as the string "all-linear".
    target_modules = "all-linear" if targets == ["all-linear"] else targets
    config = LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=target_modules,
        # SEQ_CLS makes the fresh classification head trainable and saved with the adapter.
        task_type=TaskType.SEQ_CLS if task == "sequence-classification" else TaskType.CAUSAL_LM,
    )
    try:
        return get_peft_model(model, config)
    except ValueError as error:
        raise InvalidConfig(f"spec.method.lora.targetModules: {error}") from error


def write_adapter_metadata(folder: Path, *, base_uri: str, task: str, method: str) -> None:
    (Path(folder) / METADATA_FILE).write_text(
        json.dumps({"baseModelUri": base_uri, "task": task, "method": method}, indent=2) + "\n"
    )


def adapter_base_uri(folder: Path) -> str | None:
    """The base model URI recorded next to an adapter (by kubetune or by peft)."""
    metadata = Path(folder) / METADATA_FILE
    if metadata.exists():
        return json.loads(metadata.read_text()).get("baseModelUri")
    config = Path(folder) / ADAPTER_CONFIG
    if config.exists():
        base = json.loads(config.read_text()).get("base_model_name_or_path")
        if base and "://" not in base:
            return f"file://{base}" if base.startswith("/") else f"hf://{base}"
        return base
    return None


def load_for_inference(uri: str, task: str, *, base_uri: str | None = None, dtype=None):
    """(model, tokenizer, label mapping or None) for a trained or base model at `uri`.

    An adapter folder (adapter_config.json) is applied to its base model: `base_uri`, else the
    one recorded in kubetune.json / adapter_config.json. The model is in eval mode.
    """
    from peft import PeftModel

    source = model_source(uri)
    folder = source.local_dir
    is_adapter = folder is not None and (folder / ADAPTER_CONFIG).exists()
    mapping = LabelMapping.load(folder) if folder is not None else None
    if not is_adapter:
        tokenizer = load_tokenizer(uri, source)
        if task == "sequence-classification" and mapping is None:
            mapping = _mapping_from_config(uri, source)
        model = load_model(uri, task, label_mapping=mapping, dtype=dtype,
                           pad_token_id=tokenizer.pad_token_id, source=source)
        return model.eval(), tokenizer, mapping
    base_uri = base_uri or adapter_base_uri(folder)
    if not base_uri:
        raise ModelNotFound(f"{uri} is an adapter but names no base model; set the base URI")
    tokenizer = load_tokenizer(uri, source) if (folder / "tokenizer_config.json").exists() \
        else load_tokenizer(base_uri)
    base = load_model(base_uri, task, label_mapping=mapping, dtype=dtype,
                      pad_token_id=tokenizer.pad_token_id)
    model = PeftModel.from_pretrained(base, str(folder))
    return model.eval(), tokenizer, mapping


def _mapping_from_config(uri: str, source: ModelSource) -> LabelMapping | None:
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(source.name_or_path, **source.kwargs)
    except (OSError, ValueError) as error:
        raise _not_found(uri, error) from error
    # A base model straight from the hub has only the generic LABEL_i names.
    return LabelMapping.from_model_config(config)
