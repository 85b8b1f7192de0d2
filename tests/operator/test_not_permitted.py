"""Defence in depth behind the chart's admission policy (which may be off): a job that sets an
image, priority class, toleration or node selector beyond the operator's configuration gets
Validated=False, reason NotPermitted, and no children."""

from __future__ import annotations

import copy

import pytest

from .cluster import FINETUNE_JOB, condition, wait_for


@pytest.mark.parametrize(("path", "value", "setting"), [
    ("image", "docker.io/someone/miner:latest", "KUBETUNE_ALLOWED_IMAGES"),
    ("resources.priorityClassName", "system-cluster-critical", "KUBETUNE_ALLOWED_PRIORITY_CLASSES"),
    ("resources.tolerations", [{"operator": "Exists"}], "KUBETUNE_ALLOWED_TOLERATION_KEYS"),
    ("resources.nodeSelector", {"kubernetes.io/hostname": "gpu-7"},
     "KUBETUNE_ALLOWED_NODE_SELECTOR_KEYS"),
])
def test_a_field_beyond_the_allowlist_is_not_permitted(api, operator, path, value, setting):
    doc = copy.deepcopy(FINETUNE_JOB)
    *parents, last = path.split(".")
    node = doc["spec"]
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    api.create(doc)
    status = api.wait_condition("FinetuneJob", "router", "Failed", "True", "NotPermitted")
    validated = condition({"status": status}, "Validated")
    assert validated["status"] == "False" and validated["reason"] == "NotPermitted"
    assert validated["message"].startswith(f"spec.{path}: not permitted") and setting in validated["message"]
    assert api.jobs() == []


def test_the_operators_own_image_is_permitted(api, operator, operator_settings):
    doc = copy.deepcopy(FINETUNE_JOB)
    doc["spec"]["image"] = operator_settings.trainer_image
    api.create(doc)
    job = wait_for(lambda: api.raw_job("router-train"))
    containers = job["spec"]["template"]["spec"]["containers"]
    assert containers[0]["image"] == operator_settings.trainer_image
