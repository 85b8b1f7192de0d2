"""The KServe manifest that hands a finetuned model to serving (FinetuneJob output.serving).

One pure function builds it from what training produced, so the file the trainer writes next
to the model (serving.yaml) and the object the operator creates (output.serving.create) are
the same:

- InferenceService (serving.kserve.io/v1beta1): a whole model (method full, or a merged
  adapter) on KServe's huggingface runtime, `storageUri` the model folder.
- LLMInferenceService (serving.kserve.io/v1alpha1, vLLM): the base model with the LoRA adapter
  in `spec.model.lora.adapters[]` (`name`, `uri`), the form KServe documents for adapters.

Field names follow KServe's CRDs (config/crd/full/serving.kserve.io_inferenceservices.yaml and
config/crd/full/llmisvc/serving.kserve.io_llminferenceservices.yaml) and the adapter rules of
its validating webhook (pkg/apis/serving/v1alpha2/llm_inference_service_validation.go:
every adapter has a name, unique, not the base model's name).
"""

from __future__ import annotations

from typing import Any

import yaml

from .api.uri import parse_uri

GROUP = "serving.kserve.io"
INFERENCE_SERVICE_VERSION = f"{GROUP}/v1beta1"
LLM_INFERENCE_SERVICE_VERSION = f"{GROUP}/v1alpha1"
FINETUNE_JOB_LABEL = "kubetune.io/finetunejob"
MANAGED_BY = {"app.kubernetes.io/managed-by": "kubetune"}


def kserve_uri(uri: str) -> str:
    """A kubetune URI as KServe's storage initializer reads it: s3:// and pvc:// are the same;
    hf://ORG/NAME@REV becomes hf://ORG/NAME:REV (kserve_storage `_download_hf`)."""
    parsed = parse_uri(uri)
    if parsed.scheme == "hf":
        return f"hf://{parsed.authority}" + (f":{parsed.revision}" if parsed.revision else "")
    return str(parsed).rstrip("/")


def pinned(uri: str, revision: str | None) -> str:
    """An hf:// URI pinned to the commit training resolved (other schemes as they are)."""
    parsed = parse_uri(uri)
    if parsed.scheme != "hf" or not revision:
        return uri
    return f"hf://{parsed.authority}@{revision}"


def notes_for(uri: str, *, adapter: bool) -> list[str]:
    """What the user must do before KServe can read `uri`, one sentence each."""
    scheme = parse_uri(uri).scheme
    notes = []
    if scheme == "file":
        notes.append(f"{uri} is a local path: copy the folder to s3:// or a PVC and change the URI "
                     "here, KServe cannot read file://")
    elif scheme == "pvc" and adapter:
        notes.append(
            "the adapter is on a PVC: KServe documents LoRA adapter URIs for hf:// and s3://; "
            "with a KServe release whose storage initializer reads pvc:// adapters, the claim "
            "must be in this namespace and mountable by the serving pods (ReadOnlyMany or "
            "ReadWriteMany); otherwise copy the adapter/ folder to s3:// and change its uri")
    elif scheme == "pvc":
        notes.append("the model is on a PVC: the claim must be in this namespace and mountable by "
                     "the serving pods (ReadOnlyMany or ReadWriteMany, or the training pod gone)")
    elif scheme == "s3":
        notes.append("s3://: give the serving pods credentials through a ServiceAccount with a "
                     "KServe S3 secret (serving.kserve.io/s3-endpoint annotations)")
    elif scheme == "hf" and "/" not in parse_uri(uri).authority:
        notes.append(f"{uri}: KServe reads hf://OWNER/MODEL[:REVISION] only; name the repo with "
                     "its owner")
    return notes


def serving_manifest(*, kind: str, name: str, namespace: str, task: str,
                     model_uri: str | None, adapter_uri: str | None, base_uri: str,
                     gpus: int, gpu_resource_name: str = "nvidia.com/gpu") -> dict[str, Any]:
    """The KServe object serving a FinetuneJob's result.

    `model_uri`: the whole model (model/ or merged/); `adapter_uri`: the LoRA adapter;
    `base_uri`: the base model, pinned to the revision training used where known.
    """
    metadata = {"name": name, "namespace": namespace,
                "labels": {**MANAGED_BY, FINETUNE_JOB_LABEL: name}}
    limits = {gpu_resource_name: str(gpus)} if gpus else {}
    if kind == "InferenceService":
        if not model_uri:
            raise ValueError("an InferenceService needs a whole model (model/ or merged/)")
        model: dict[str, Any] = {
            "modelFormat": {"name": "huggingface"},
            "storageUri": kserve_uri(model_uri),
            # The runtime reads the task from config.json's architectures.
            "args": [f"--model_name={name}"],
        }
        if limits:
            model["resources"] = {"limits": limits, "requests": dict(limits)}
        return {"apiVersion": INFERENCE_SERVICE_VERSION, "kind": kind, "metadata": metadata,
                "spec": {"predictor": {"model": model}}}
    if kind != "LLMInferenceService":
        raise ValueError(f"unknown serving kind {kind!r}")
    if task != "causal-lm":
        raise ValueError("an LLMInferenceService (vLLM) serves causal-lm models")
    base_name = f"{name}-base"
    if adapter_uri and not model_uri:
        spec_model: dict[str, Any] = {
            "uri": kserve_uri(base_uri), "name": base_name,
            # Adapter names must differ from the base model's name (KServe's webhook).
            "lora": {"adapters": [{"name": name, "uri": kserve_uri(adapter_uri)}]},
        }
    elif model_uri:
        spec_model = {"uri": kserve_uri(model_uri), "name": name}
    else:
        raise ValueError("an LLMInferenceService needs a model or an adapter")
    spec: dict[str, Any] = {"model": spec_model, "replicas": 1}
    if limits:
        spec["template"] = {"containers": [{
            "name": "main", "resources": {"limits": limits, "requests": dict(limits)}}]}
    return {"apiVersion": LLM_INFERENCE_SERVICE_VERSION, "kind": kind, "metadata": metadata,
            "spec": spec}


def manifest_text(manifest: dict[str, Any], notes: list[str]) -> str:
    """The manifest as YAML, the user's to-dos first as comments."""
    header = [f"# {manifest['kind']} for the model kubetune wrote next to this file.",
              "# Apply with: kubectl apply -f serving.yaml"]
    header += [f"# NOTE: {note}" for note in notes]
    return "\n".join(header) + "\n" + yaml.safe_dump(manifest, sort_keys=False)
