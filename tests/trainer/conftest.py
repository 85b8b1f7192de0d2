from __future__ import annotations

import pytest

from .helpers import build_tiny_llama, build_tokenizer, colour_chats, write_jsonl


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """One intra-op thread: on a small shared CI machine, two spinning OpenMP threads per
    process were up to 7x slower than one (measured: MiniLM forward+backward 3.1 s vs 0.44 s)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def trainer_env(tmp_path, monkeypatch):
    """No hub, a private cache, an ephemeral progress port, a termination log in tmp."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # for the subprocesses, as above
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("KUBETUNE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("KUBETUNE_PROGRESS_PORT", "0")
    monkeypatch.setenv("KUBETUNE_TERMINATION_LOG", str(tmp_path / "termination-log"))
    return tmp_path


@pytest.fixture(scope="session")
def tiny_lm(tmp_path_factory):
    """Folder with a 2-layer Llama (hidden 64) and a word-level tokenizer."""
    folder = tmp_path_factory.mktemp("tiny-llama")
    tokenizer = build_tokenizer(folder)
    build_tiny_llama(folder, len(tokenizer))
    return folder


@pytest.fixture(scope="session")
def colour_data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("colour-data")
    return write_jsonl(folder / "train.jsonl", colour_chats(240))
