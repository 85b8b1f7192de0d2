"""Image, priority class, tolerations and node selector: allowed only as the operator's
configuration permits, by the operator (placement_problems) and by the chart's policy (CEL),
which agree case by case; `kubetune validate` (offline, no configuration) accepts them."""

from __future__ import annotations

import copy

import pytest
from kubetune.admission.placement import (
    IMAGE,
    NODE_SELECTOR,
    PRIORITY_CLASS,
    TOLERATIONS,
    PlacementPolicy,
    glob_regex,
    placement_problems,
)
from kubetune.admission.policy import policy_manifests
from kubetune.emulator import admission_policies, errors
from kubetune.operator.settings import DEFAULT_TRAINER_IMAGE, Settings
from kubetune.validation import validate_document

from .objects import BASES, Grants, Requester
from .test_policy_cel import RTYPES

DEFAULTS = Settings().placement_policy
PERMISSIVE = PlacementPolicy(
    images=("registry.example.com/team-*/trainer:*", DEFAULT_TRAINER_IMAGE),
    priority_classes=("training-low",),
    toleration_keys=("nvidia.com/gpu",),
    node_selector_keys=("topology.kubernetes.io/zone",),
)

# (rule, spec changes) for each field: permitted by PERMISSIVE, refused by the defaults.
CASES = [
    (IMAGE, {"image": "registry.example.com/team-a/trainer:v2"}),
    (PRIORITY_CLASS, {"resources": {"gpus": 0, "priorityClassName": "training-low"}}),
    (TOLERATIONS, {"resources": {"gpus": 0, "tolerations": [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]}}),
    (NODE_SELECTOR, {"resources": {"gpus": 0, "nodeSelector": {
        "topology.kubernetes.io/zone": "eu-west-1a"}}}),
]
# Refused even by PERMISSIVE.
BEYOND = [
    (IMAGE, {"image": "registry.example.com/team-a/miner:v1"}),
    (IMAGE, {"image": "evil.example.com/registry.example.com/team-a/trainer:v1"}),
    (PRIORITY_CLASS, {"resources": {"gpus": 0, "priorityClassName": "system-cluster-critical"}}),
    (TOLERATIONS, {"resources": {"gpus": 0, "tolerations": [
        {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists"}]}}),
    (TOLERATIONS, {"resources": {"gpus": 0, "tolerations": [{"operator": "Exists"}]}}),
    (NODE_SELECTOR, {"resources": {"gpus": 0, "nodeSelector": {"kubernetes.io/hostname": "n1"}}}),
]


def job(kind: str, changes: dict) -> dict:
    obj = copy.deepcopy(BASES[kind])
    obj["spec"].update(copy.deepcopy(changes))
    return obj


def cel_refusal(policy: PlacementPolicy, obj: dict, old: dict | None = None) -> str | None:
    manifests = policy_manifests(policy)
    try:
        admission_policies.check(
            [m for m in manifests if m["kind"] == "ValidatingAdmissionPolicy"],
            [m for m in manifests if m["kind"] == "ValidatingAdmissionPolicyBinding"],
            "UPDATE" if old else "CREATE", RTYPES[obj["kind"]], {}, obj, old,
            Requester("alice"), Grants().decide)
    except errors.ApiError as error:
        assert error.code == 403
        return error.message
    return None


def ids(case):
    return case[0].field.rsplit(".", 1)[-1]


@pytest.mark.parametrize("kind", BASES)
@pytest.mark.parametrize(("rule", "changes"), CASES, ids=[ids(c) for c in CASES])
def test_refused_by_default_and_allowed_when_configured(kind, rule, changes):
    obj = job(kind, changes)
    assert validate_document(copy.deepcopy(obj)) == []  # kubetune validate accepts it

    (problem,) = placement_problems(obj, DEFAULTS)
    assert problem.startswith(f"{rule.field}: not permitted") and rule.setting in problem
    assert rule.message in cel_refusal(DEFAULTS, obj)

    assert placement_problems(obj, PERMISSIVE) == []
    assert cel_refusal(PERMISSIVE, obj) is None


@pytest.mark.parametrize("kind", BASES)
@pytest.mark.parametrize(("rule", "changes"), BEYOND, ids=[ids(c) for c in BEYOND])
def test_beyond_the_allowlist_is_refused(kind, rule, changes):
    obj = job(kind, changes)
    assert [p.split(":")[0] for p in placement_problems(obj, PERMISSIVE)] == [rule.field]
    assert rule.message in cel_refusal(PERMISSIVE, obj)


@pytest.mark.parametrize(("rule", "changes"), CASES, ids=[ids(c) for c in CASES])
def test_an_update_that_keeps_the_field_is_not_judged_again(rule, changes):
    """A tightened allowlist does not block editing other fields of an admitted job."""
    old = job("EvalJob", changes)
    new = copy.deepcopy(old)
    new["metadata"]["labels"] = {"touched": "yes"}
    assert placement_problems(new, DEFAULTS, old) == []
    assert cel_refusal(DEFAULTS, new, old) is None


def test_the_defaults_permit_exactly_the_operators_own_image_and_nothing_else():
    assert PlacementPolicy(images=(DEFAULT_TRAINER_IMAGE,)) == DEFAULTS
    obj = job("FinetuneJob", {"image": DEFAULT_TRAINER_IMAGE})
    assert placement_problems(obj, DEFAULTS) == [] and cel_refusal(DEFAULTS, obj) is None
    own = Settings(trainer_image="registry.example.com/mirror/trainer:0.1.0").placement_policy
    assert own.images == ("registry.example.com/mirror/trainer:0.1.0",)


@pytest.mark.parametrize(("glob", "image", "matches"), [
    ("ghcr.io/kubetune/trainer:*", "ghcr.io/kubetune/trainer:0.2.0", True),
    ("ghcr.io/kubetune/trainer:*", "ghcr.io/kubetune/trainerX:0.2.0", False),
    ("ghcr.io/kubetune/*", "ghcr.io/kubetune/a/b:c", True),
    ("ghcr.io/kubetune/trainer:0.1.0", "ghcrXio/kubetune/trainer:0.1.0", False),
    ("ghcr.io/kubetune/trainer:0.1.0", "ghcr.io/kubetune/trainer:0.1.0-evil", False),
])
def test_globs_match_the_whole_image_and_only_star_is_special(glob, image, matches):
    import re
    assert bool(re.match(glob_regex(glob), image)) is matches
    obj = job("FinetuneJob", {"image": image})
    assert (cel_refusal(PlacementPolicy(images=(glob,)), obj) is None) is matches


def test_settings_read_the_allowlists_from_the_environment():
    settings = Settings.from_env({
        "KUBETUNE_ALLOWED_IMAGES": "a.io/*, b.io/x:1",
        "KUBETUNE_ALLOWED_PRIORITY_CLASSES": "low",
        "KUBETUNE_ALLOWED_TOLERATION_KEYS": "*",
        "KUBETUNE_ALLOWED_NODE_SELECTOR_KEYS": "zone,pool",
    })
    assert settings.placement_policy == PlacementPolicy(
        ("a.io/*", "b.io/x:1"), ("low",), ("*",), ("zone", "pool"))
