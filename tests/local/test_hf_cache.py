"""The offline Hugging Face cache the local cluster gives its pods."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

from kubetune.local.hf_cache import MODEL_ID, seed_hf_cache

LOADS_MINILM = f"""
import transformers
model = transformers.AutoModel.from_pretrained({MODEL_ID!r})
tokenizer = transformers.AutoTokenizer.from_pretrained({MODEL_ID!r})
print(type(model).__name__, model.config.hidden_size, len(tokenizer('hello world')['input_ids']))
"""


def test_seeded_cache_loads_minilm_offline(tmp_path: pathlib.Path) -> None:
    snapshot = seed_hf_cache(tmp_path / "hf")
    seed_hf_cache(tmp_path / "hf")  # seeding twice is fine
    assert (snapshot / "config.json").is_file()
    # A fresh interpreter, so that HF_HOME is read at import as in a pod.
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}
    env.pop("HF_HUB_CACHE", None)
    env.pop("TRANSFORMERS_CACHE", None)
    done = subprocess.run([sys.executable, "-c", LOADS_MINILM], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["BertModel", "384", "4"]
