"""Class labels for sequence classification: names <-> ids, saved next to the model."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import InvalidDataset

FILE_NAME = "label_mapping.json"


@dataclass(frozen=True)
class LabelMapping:
    """`names[i]` is the label with id i."""

    names: tuple[str, ...]

    @property
    def label2id(self) -> dict[str, int]:
        return {name: index for index, name in enumerate(self.names)}

    @property
    def id2label(self) -> dict[int, str]:
        return dict(enumerate(self.names))

    def id_of(self, label: str | int) -> int | None:
        """The id of a label from a data file, or None if the mapping has no such label."""
        key = str(label).strip()
        return self.label2id.get(key)

    def to_json(self) -> dict:
        return {"labels": list(self.names), "label2id": self.label2id}

    def save(self, folder: Path) -> Path:
        path = Path(folder) / FILE_NAME
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, folder: Path) -> LabelMapping | None:
        path = Path(folder) / FILE_NAME
        if not path.exists():
            return None
        return cls(tuple(json.loads(path.read_text())["labels"]))

    @classmethod
    def from_model_config(cls, config) -> LabelMapping | None:
        id2label = getattr(config, "id2label", None) or {}
        if not id2label:
            return None
        return cls(tuple(str(id2label[i]) for i in sorted(int(k) for k in id2label)))


def build_label_mapping(labels: list[str | int], num_labels: int | None) -> LabelMapping:
    """Map the training labels to ids.

    String labels get ids in sorted order, so the same data always gives the same mapping.
    Integer labels (or digit strings, as CSV gives them) keep their value as id.
    """
    if not labels:
        raise InvalidDataset("no labelled examples")
    as_text = [str(label).strip() for label in labels]
    if all(text.lstrip("-").isdigit() for text in as_text):
        values = sorted({int(text) for text in as_text})
        if values[0] < 0:
            raise InvalidDataset(f"label ids must be >= 0, found {values[0]}")
        count = num_labels or values[-1] + 1
        if values[-1] >= count:
            raise InvalidDataset(f"label id {values[-1]} is out of range for numLabels {count}")
        return LabelMapping(tuple(str(i) for i in range(count)))
    names = sorted(set(as_text))
    if num_labels is not None and len(names) > num_labels:
        raise InvalidDataset(
            f"the data has {len(names)} distinct labels but spec.model.numLabels is {num_labels}"
        )
    if num_labels is not None and len(names) < num_labels:
        # Classes absent from the training data still get an id (and a generic name).
        names += [f"LABEL_{i}" for i in range(len(names), num_labels)]
    if len(names) < 2:
        raise InvalidDataset(f"classification needs at least 2 labels, found {names}")
    return LabelMapping(tuple(names))
