"""The artifacts of a finished run, written under output.uri:

    adapter/            LoRA/QLoRA adapter (peft), tokenizer, label_mapping.json, kubetune.json
    merged/             base model with the adapter merged in (mergeAdapter), tokenizer
    model/              the trained model (method full), tokenizer
    README.md           model card: base model, dataset and its hash, hyperparameters, metrics
    data-report.json    rows in, dropped by reason, tokens, lengths
    result.json         the same result as the termination message
    serving.yaml        KServe InferenceService or LLMInferenceService (output.serving)
    tensorboard/        TensorBoard event files: losses, learning rate, throughput per step
    checkpoints/        for resuming (kept, newest `keep`)
"""

from __future__ import annotations

import json
import logging

from kubetune.serving import manifest_text, notes_for, pinned, serving_manifest

from . import health
from .data.labels import LabelMapping
from .models import write_adapter_metadata
from .storage import Destination

log = logging.getLogger(__name__)

SERVING_FILE = "serving.yaml"


def write_file(dest: Destination, name: str, text: str) -> str:
    """Write a top-level file; for s3, upload just that file."""
    folder = dest.local_dir()
    (folder / name).write_text(text)
    if dest.is_remote:
        from .storage import parse, s3_client

        parsed = parse(dest.uri_of(name))
        s3_client().upload_file(str(folder / name), parsed.authority, parsed.path.strip("/"))
    return dest.uri_of(name)


def save_model_folder(dest: Destination, name: str, model, tokenizer,
                      mapping: LabelMapping | None, metadata: dict | None = None,
                      state_dict: dict | None = None) -> str:
    """`state_dict`: the full weights when the model is sharded (FSDP), gathered by the caller."""
    folder = dest.local_dir(name)
    model.save_pretrained(folder, **({"state_dict": state_dict} if state_dict is not None else {}))
    tokenizer.save_pretrained(folder)
    if mapping is not None:
        mapping.save(folder)
    if metadata is not None:
        write_adapter_metadata(folder, **metadata)
    uri = dest.publish(name)
    log.info("output: wrote %s", uri)
    return uri


def serving_yaml(config, uris: dict, revision: str | None) -> str:
    """serving.yaml: the KServe object for this run's model (kubetune.serving), with what the
    user must still do (a file:// or pvc:// location) as comments at the top."""
    serving = config.output.serving
    model_uri, adapter_uri = uris.get("modelUri"), uris.get("adapterUri")
    if serving.kind == "LLMInferenceService" and adapter_uri:
        model_uri = None  # the adapter on the base model, not the merged copy
    manifest = serving_manifest(
        kind=serving.kind, name=config.job_name, namespace=config.namespace,
        task=config.model.task, model_uri=model_uri, adapter_uri=adapter_uri,
        base_uri=pinned(config.model.uri, revision), gpus=serving.gpus,
        gpu_resource_name=serving.gpu_resource_name)
    notes = notes_for(model_uri or adapter_uri, adapter=model_uri is None)
    if model_uri is None:
        notes += [n for n in notes_for(config.model.uri, adapter=False) if "file://" in n]
    return manifest_text(manifest, notes)


def model_card(*, config, data_report: dict, result: dict, merged: bool,
               history: list[dict] | None = None, revision: str | None = None) -> str:
    hyper = config.hyperparameters.model_dump(mode="json", by_alias=True, exclude_none=True)
    method = config.method.model_dump(mode="json", by_alias=True, exclude_none=True)
    dataset = data_report.get("dataset", {})
    metrics = {k: v for k, v in result.items() if not k.endswith("Uri")}
    train = data_report["train"]
    lines = [
        f"# {config.job_name}",
        "",
        f"Finetuned by kubetune (FinetuneJob `{config.namespace}/{config.job_name}`).",
        "",
        "| | |",
        "| --- | --- |",
        f"| base model | `{config.model.uri}` |",
        f"| revision | `{revision or 'unknown (not a hub snapshot)'}` "
        f"(requested: {_requested_revision(config.model.uri)}) |",
        f"| task | {config.model.task} |",
        f"| method | {config.method.type} |",
        f"| dataset | `{dataset.get('uri')}` |",
        f"| dataset content hash | `{dataset.get('contentHash')}` |",
        f"| dataset format | {data_report.get('format')} |",
        f"| training rows | {train['rowsOut']} of {train['rowsIn']} read |",
        "",
        "## Final metrics",
        "",
        "```json",
        json.dumps(metrics, indent=2),
        "```",
        "",
        *_history_lines(history or [], result.get("keptStep"), result.get("plateau")),
        "## Hyperparameters",
        "",
        "```json",
        json.dumps({"method": method, "hyperparameters": hyper}, indent=2),
        "```",
        "",
        "## Files",
        "",
    ]
    if not config.method.trains_adapter:
        lines.append("- `model/`: the trained model and tokenizer")
    else:
        lines.append("- `adapter/`: the LoRA adapter and tokenizer (load on top of the base model)")
        if merged:
            lines.append("- `merged/`: the base model with the adapter merged in")
    lines.append("- `data-report.json`: what data preparation kept and dropped, and why")
    lines.append("- `tensorboard/`: TensorBoard event files (`tensorboard --logdir tensorboard`)")
    if config.output.serving is not None:
        lines.append(f"- `{SERVING_FILE}`: a KServe {config.output.serving.kind} for this model")
    lines.append("")
    return "\n".join(lines)


def _history_lines(history: list[dict], kept: int | None,
                   plateau: dict | None = None) -> list[str]:
    """The evaluations during training, the kept one marked, and the plateau if one was
    reached."""
    if not history:
        return []
    lines = ["## Evaluation during training", "",
             "| step | train loss (smoothed) | eval loss | eval accuracy | |",
             "| --- | --- | --- | --- | --- |"]
    for entry in history:
        accuracy = entry.get("evalAccuracy")
        lines.append(f"| {entry['step']} | {entry.get('trainLoss')} | "
                     f"{entry['evalLoss']:.4f} | "
                     f"{'' if accuracy is None else f'{accuracy:.4f}'} | "
                     f"{'kept' if entry['step'] == kept else ''} |")
    if plateau:
        lines += ["", f"Plateau: {health.plateau_message(plateau)}."]
    return [*lines, ""]


def _requested_revision(uri: str) -> str:
    return uri.split("@", 1)[1] if uri.startswith("hf://") and "@" in uri else "default"

