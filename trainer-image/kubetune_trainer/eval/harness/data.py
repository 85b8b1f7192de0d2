"""Task data on clusters without the Hugging Face Hub: spec.benchmarkData.uri.

The folder is a prepared Hugging Face datasets cache: what HF_DATASETS_CACHE pointed at when
each task's dataset was loaded once on a connected machine, e.g.

    HF_DATASETS_CACHE=/data/bench python -c \
        "import datasets; datasets.load_dataset('allenai/ai2_arc', 'ARC-Easy')"

(lm_eval's task YAML names each task's dataset_path and dataset_name). `datasets` then loads
them offline from `<namespace>___<name>/<config>/<version>/<hash>/`.

A PVC is mounted read-only and `datasets` takes file locks next to the data, so the cache is
mirrored into a writable folder as symbolic links (no copy of the data). When a task's dataset
is absent, `datasets` and lm_eval raise errors that name neither the task nor the cache
("Couldn't reach 'openai/gsm8k' on the Hub (OfflineModeIsEnabled)"); `missing_dataset`
turns them into one that says which dataset the task needs, where it looked, what is there,
and how to prepare it.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from ... import storage
from ...errors import InvalidDataset

MARKER = "___"  # datasets names cached Hub datasets <namespace>___<name>


def use_cache(uri: str) -> Path:
    """Make `datasets` load from the prepared cache at `uri`, offline; returns the folder used."""
    import datasets

    try:
        source = storage.fetch(uri)
    except storage.NotFound as error:
        raise InvalidDataset(f"spec.benchmarkData.uri {uri}: nothing there ({error})") from error
    if not source.is_dir():
        raise InvalidDataset(f"spec.benchmarkData.uri {uri} is a file; it must be a folder "
                             "holding a prepared Hugging Face datasets cache")
    mirror = (storage.cache_root() / "benchmark-datasets"
              / hashlib.sha256(str(source).encode()).hexdigest()[:16])
    _link_tree(source, mirror)
    os.environ["HF_DATASETS_CACHE"] = str(mirror)
    os.environ["HF_DATASETS_OFFLINE"] = "1"
    # datasets read these at import; the evaluator imported it before this config was known.
    datasets.config.HF_DATASETS_CACHE = mirror
    datasets.config.HF_HUB_OFFLINE = True
    datasets.config.HF_DATASETS_OFFLINE = True
    return mirror


def _link_tree(source: Path, mirror: Path) -> None:
    for folder, _, files in os.walk(source):
        target = mirror / Path(folder).relative_to(source)
        target.mkdir(parents=True, exist_ok=True)
        for name in files:
            if name.endswith(".lock"):
                continue
            link = target / name
            if not link.exists():
                link.symlink_to(Path(folder) / name)


def cached_datasets(root: Path | None) -> list[str]:
    """`namespace/name (config, ...)` for every dataset in a datasets cache folder."""
    if root is None or not root.is_dir():
        return []
    found = []
    for entry in sorted(root.iterdir()):
        if not entry.is_dir() or entry.name.startswith(("_", ".")) or entry.name == "downloads":
            continue
        configs = sorted(p.name for p in entry.iterdir() if p.is_dir())
        name = entry.name.replace(MARKER, "/")
        found.append(f"{name} ({', '.join(configs)})" if configs else name)
    return found


def missing_dataset(label: str, where: str, dataset: str | None, config: str | None,
                    error: Exception, data_uri: str | None, cache: Path | None) -> InvalidDataset:
    """The error for a task whose dataset could not be loaded."""
    needs = (f"dataset {dataset}" + (f" (config {config})" if config else "")
             if dataset else "its dataset")
    if data_uri:
        held = cached_datasets(cache)
        text = (f"{where}: task {label} needs {needs}, which is not in the prepared cache "
                f"spec.benchmarkData.uri {data_uri} (it holds: {'; '.join(held) or 'nothing'}). "
                f"Prepare it on a machine with Hub access: HF_DATASETS_CACHE=<folder> python -c "
                f"\"import datasets; datasets.load_dataset('{dataset or '<dataset>'}'"
                + (f", '{config}'" if config else "") + ")\", then copy <folder> there")
    else:
        text = (f"{where}: task {label} needs {needs}, which could not be loaded from the "
                "Hugging Face Hub; on a cluster without Hub access set spec.benchmarkData.uri "
                "to a prepared datasets cache")
    return InvalidDataset(f"{text} ({type(error).__name__}: {str(error)[:300]})")
