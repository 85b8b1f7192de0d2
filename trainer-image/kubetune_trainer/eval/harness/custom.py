"""A custom multiple-choice task: a JSONL file of {question, choices, answer}, turned into an
lm-evaluation-harness task config built at runtime, so it is scored exactly like the
harness's own multiple-choice tasks (arc_easy, hellaswag ...): the log-likelihood of each
choice after the prompt, acc by the raw sum and acc_norm by the sum per byte.

    answer    the index of the right choice (0-based), or its text
"""

from __future__ import annotations

import json
from pathlib import Path

from ...errors import InvalidDataset

PROMPT = "Question: {{question}}\nAnswer:"  # arc_easy's template
METRICS = [{"metric": "acc", "aggregation": "mean", "higher_is_better": True},
           {"metric": "acc_norm", "aggregation": "mean", "higher_is_better": True}]
MAX_PROBLEMS = 5


def read_rows(path: Path, where: str) -> list[dict]:
    """The file's rows with answer as an index; InvalidDataset naming each bad line."""
    rows, problems = [], []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            problem, row = _row(line)
            if problem:
                problems.append(f"line {number}: {problem}")
            else:
                rows.append(row)
    if problems:
        shown = "; ".join(problems[:MAX_PROBLEMS])
        more = f" (and {len(problems) - MAX_PROBLEMS} more)" if len(problems) > MAX_PROBLEMS else ""
        raise InvalidDataset(f"{where}: rows must be {{question, choices, answer}}: {shown}{more}")
    if not rows:
        raise InvalidDataset(f"{where}: no rows")
    return rows


def _row(line: str) -> tuple[str | None, dict]:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as error:
        return f"not JSON ({error.msg})", {}
    if not isinstance(row, dict):
        return "not a JSON object", {}
    question, choices, answer = row.get("question"), row.get("choices"), row.get("answer")
    if not isinstance(question, str) or not question.strip():
        return "question must be a non-empty string", {}
    if (not isinstance(choices, list) or len(choices) < 2
            or not all(isinstance(c, str) and c.strip() for c in choices)):
        return "choices must be a list of at least 2 non-empty strings", {}
    if isinstance(answer, bool) or not isinstance(answer, int | str):
        return "answer must be the right choice's index or text", {}
    if isinstance(answer, str):
        if answer not in choices:
            return f"answer {answer[:80]!r} is not one of the choices", {}
        answer = choices.index(answer)
    if not 0 <= answer < len(choices):
        return f"answer {answer} is not an index of the {len(choices)} choices", {}
    return None, {"question": question, "choices": choices, "answer": answer}


def task_config(name: str, rows: list[dict], folder: Path) -> dict:
    """An lm_eval task config over `rows` (written to folder as JSONL for the json loader)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.jsonl"
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows),
                    encoding="utf-8")
    return {
        "task": name,
        "dataset_path": "json",
        # A cache of its own: the shared one may be a read-only prepared cache.
        "dataset_kwargs": {"data_files": {"test": str(path)},
                           "cache_dir": str(folder / "datasets-cache")},
        "test_split": "test",
        # Few-shot examples come from the same file; the harness never shows a question
        # its own answer.
        "fewshot_split": "test",
        "output_type": "multiple_choice",
        "doc_to_text": PROMPT,
        "doc_to_choice": "{{choices}}",
        "doc_to_target": "{{answer}}",
        "target_delimiter": " ",
        "metric_list": METRICS,
        "metadata": {"version": 1.0},
    }
