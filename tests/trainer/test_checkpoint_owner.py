"""A run resumes only its own FinetuneJob's checkpoints (uid stamped in trainer_state.json).

Kubernetes reuses names: `kubectl delete ftj x && kubectl apply -f x.yaml` makes a new object
with a new metadata.uid (https://kubernetes.io/docs/concepts/overview/working-with-objects/names/#uids),
and two jobs can name the same output.uri. Neither may silently continue the other's run.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from kubetune_trainer import checkpointing, cli
from kubetune_trainer.errors import OutputInUse
from kubetune_trainer.storage import Destination

from .helpers import make_config


def _checkpoint(out: Path, step: int, uid: str | None) -> None:
    folder = out / "checkpoints" / f"checkpoint-{step}"
    folder.mkdir(parents=True)
    state = {"step": step, **({"jobUid": uid} if uid else {})}
    (folder / "trainer_state.json").write_text(json.dumps(state))


def test_own_checkpoints_are_claimed_and_kept(tmp_path):
    _checkpoint(tmp_path, 4, "uid-a")
    assert checkpointing.claim(Destination(f"file://{tmp_path}"), "uid-a", False) == []
    assert checkpointing.latest(Destination(f"file://{tmp_path}")).step == 4


@pytest.mark.parametrize("owner", ["uid-a", None])
def test_another_jobs_checkpoints_fail_with_output_in_use(tmp_path, owner):
    _checkpoint(tmp_path, 4, owner)
    with pytest.raises(OutputInUse, match=r"choose another output\.uri, or set output\.overwrite"):
        checkpointing.claim(Destination(f"file://{tmp_path}"), "uid-b", False)
    assert (tmp_path / "checkpoints" / "checkpoint-4").is_dir()  # nothing deleted


def test_overwrite_deletes_only_the_other_jobs_checkpoints(tmp_path):
    _checkpoint(tmp_path, 4, "uid-a")
    _checkpoint(tmp_path, 9, "uid-b")
    dest = Destination(f"file://{tmp_path}")
    assert checkpointing.claim(dest, "uid-b", True) == ["checkpoint-4"]
    assert checkpointing.completed_checkpoints(dest) == ["checkpoint-9"]


def test_a_run_without_a_uid_claims_nothing(tmp_path):
    _checkpoint(tmp_path, 4, "uid-a")
    assert checkpointing.claim(Destination(f"file://{tmp_path}"), None, False) == []


def _run(tmp_path: Path, tiny_lm, colour_data, uid: str, **output) -> int:
    config = make_config(tiny_lm, f"file://{colour_data}", tmp_path / "out",
                         dataset={"validation": None}, jobUid=uid,
                         hyperparameters={"maxSteps": 4, "evalEverySteps": 0},
                         checkpointing={"everySteps": 2, "keep": 1},
                         output={"mergeAdapter": False, **output})
    path = tmp_path / f"{uid}.json"
    path.write_text(json.dumps(config))
    return cli.main(["--config", str(path)])


@pytest.mark.slow
def test_the_trainer_stamps_its_uid_and_refuses_another_jobs_output(
        tmp_path, tiny_lm, colour_data, monkeypatch, caplog):
    monkeypatch.setenv("KUBETUNE_TERMINATION_LOG", str(tmp_path / "termination-log"))
    monkeypatch.setenv("KUBETUNE_PROGRESS_PORT", "0")
    assert _run(tmp_path, tiny_lm, colour_data, "uid-a") == 0
    states = lambda: [json.loads(p.read_text())["jobUid"] for p in  # noqa: E731
                      (tmp_path / "out" / "checkpoints").glob("*/trainer_state.json")]
    assert states() == ["uid-a"]

    assert _run(tmp_path, tiny_lm, colour_data, "uid-b") == 2  # not retried: exit code 2
    message = json.loads((tmp_path / "termination-log").read_text())
    assert message["reason"] == "OutputInUse" and "uid-a" in message["message"]

    caplog.set_level(logging.INFO)
    caplog.clear()
    assert _run(tmp_path, tiny_lm, colour_data, "uid-b", overwrite=True) == 0
    messages = [r.getMessage() for r in caplog.records]
    assert any("deleted 1 checkpoints of another job" in m for m in messages)
    assert not any(m.startswith("resume:") for m in messages)  # started clean
    assert states() == ["uid-b"]
    assert json.loads((tmp_path / "termination-log").read_text())["step"] == 4
