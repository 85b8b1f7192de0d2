"""Build a Hugging Face datasets cache entry from data files, for spec.benchmarkData.uri.

On a connected machine the simplest cache is `datasets.load_dataset(...)` with
HF_DATASETS_CACHE set (see data.py). Where only the data files exist (a mirror of the Hub
repo's parquet or JSON files, or your own rows in the dataset's columns), this writes the
same cache layout the Hub download would:

    python -m kubetune_trainer.eval.harness.prepare --cache /data/bench \\
        --dataset allenai/ai2_arc --config ARC-Easy \\
        --split test=ARC-Easy/test.parquet --split train=ARC-Easy/train.parquet

after which `datasets.load_dataset("allenai/ai2_arc", "ARC-Easy")` with HF_DATASETS_OFFLINE=1
and HF_DATASETS_CACHE=/data/bench loads them, and so does every lm-evaluation-harness task
whose dataset_path and dataset_name these are.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from .data import MARKER

BUILDERS = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv"}


def prepare_cache(cache: Path, dataset: str, config: str | None,
                  files: dict[str, Path]) -> Path:
    """Write `files` (split -> data file) as the cached `dataset` (namespace/name), `config`.
    Returns the folder holding the arrow files."""
    from datasets.packaged_modules.csv.csv import Csv
    from datasets.packaged_modules.json.json import Json
    from datasets.packaged_modules.parquet.parquet import Parquet

    kinds = {BUILDERS.get(Path(f).suffix) for f in files.values()}
    if len(kinds) != 1 or None in kinds:
        raise ValueError(f"data files must all be one of {', '.join(BUILDERS)}: {files}")
    builder_class = {"json": Json, "parquet": Parquet, "csv": Csv}[kinds.pop()]
    namespace, _, name = dataset.rpartition("/")
    config_name = config or "default"
    # The builder is given the bare name and its cache moved under <namespace>___<name>
    # afterwards: datasets only accepts a repo_id for files that live in that Hub repo.
    with tempfile.TemporaryDirectory(dir=cache.parent if cache.parent.exists() else None) as tmp:
        builder = builder_class(cache_dir=tmp, dataset_name=name, config_name=config_name,
                                config_id=config_name, hash="local",
                                data_files={split: str(path) for split, path in files.items()})
        builder.download_and_prepare()
        target = cache / (f"{namespace}{MARKER}{name}" if namespace else name) / config_name
        shutil.rmtree(target, ignore_errors=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(Path(tmp) / name / config_name), str(target))
    return next(p for p in target.glob("*/*") if p.is_dir())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kubetune_trainer.eval.harness.prepare",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path, required=True, help="the cache folder")
    parser.add_argument("--dataset", required=True, help="namespace/name, as on the Hub")
    parser.add_argument("--config", help="the dataset's config (lm_eval's dataset_name)")
    parser.add_argument("--split", action="append", required=True, metavar="SPLIT=FILE")
    args = parser.parse_args(argv)
    files = dict(item.split("=", 1) for item in args.split)
    folder = prepare_cache(args.cache, args.dataset, args.config,
                           {split: Path(path) for split, path in files.items()})
    print(folder)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
