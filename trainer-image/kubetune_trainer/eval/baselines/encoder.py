"""Sentence embeddings from the frozen base encoder: mean of the token states over the
attention mask, L2-normalised (how sentence encoders such as all-MiniLM-L6-v2 were trained;
the [CLS] pooler of a BERT checkpoint was not trained for similarity)."""

from __future__ import annotations

import numpy as np
import torch

from ...models import load_tokenizer, model_source
from ..batching import length_sorted_batches, scatter

BATCH_SIZE = 64
BATCH_TOKENS = 16_384
MAX_LENGTH = 256


class Encoder:
    def __init__(self, uri: str, device: torch.device):
        from transformers import AutoModel

        from ...models import _not_found

        source = model_source(uri)
        self.tokenizer = load_tokenizer(uri, source)
        try:
            self.model = AutoModel.from_pretrained(source.name_or_path, dtype=torch.float32,
                                                   **source.kwargs)
        except (OSError, ValueError) as error:
            raise _not_found(uri, error) from error
        self.model.to(device).eval()
        self.device = device
        limit = getattr(self.model.config, "max_position_embeddings", MAX_LENGTH) or MAX_LENGTH
        self.max_length = min(MAX_LENGTH, int(limit))

    @torch.inference_mode()
    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.model.config.hidden_size), dtype=np.float32)
        encoding = self.tokenizer(texts, truncation=True, max_length=self.max_length)
        ids = encoding["input_ids"]
        batches = length_sorted_batches([len(i) for i in ids], BATCH_SIZE, BATCH_TOKENS)
        results = []
        for indices in batches:
            batch = self.tokenizer.pad({"input_ids": [ids[i] for i in indices]},
                                       return_tensors="pt")
            mask = batch["attention_mask"].to(self.device)
            states = self.model(input_ids=batch["input_ids"].to(self.device),
                                attention_mask=mask).last_hidden_state.float()
            weights = mask.unsqueeze(-1).float()
            pooled = (states * weights).sum(1) / weights.sum(1).clamp(min=1)
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
            results.append(list(pooled.cpu().numpy()))
        return np.stack(scatter(batches, results, len(texts)))

    def release(self) -> None:
        self.model = None
