"""$(VAR) expansion, mount-path rewriting and host-name rewriting (pure functions)."""

from __future__ import annotations

from kubetune.local.expansion import PathMap, expand, rewrite_hosts


def test_expansion_follows_kubernetes_rules() -> None:
    env = {"A": "1", "RANK": "$(A)"}
    assert expand("x$(A)y", env) == "x1y"
    assert expand("$$(A) $$ $(B) $(A", env) == "$(A) $ $(B) $(A"
    assert expand("$(RANK)", env) == "$(A)"  # values are not expanded twice


def test_paths_are_rewritten_on_mount_boundaries_longest_first() -> None:
    paths = PathMap({"/mnt/pvc": "/w/all", "/mnt/pvc/data": "/w/data", "/dev/termination-log": "/w/t"})
    assert paths.translate("/mnt/pvc/data/x.jsonl") == "/w/data/x.jsonl"
    assert paths.translate("/mnt/pvc/other") == "/w/all/other"
    assert paths.translate("/mnt/pvcx") == "/mnt/pvcx"
    assert paths.translate("/dev/termination-log") == "/w/t"
    assert paths.translate("relative/mnt/pvc") == "relative/mnt/pvc"


def test_service_host_names_become_addresses_only_as_whole_names() -> None:
    hosts = {"job-0.job": "127.0.0.2", "job-0.job.ns.svc.cluster.local": "127.0.0.2"}
    assert rewrite_hosts("--main_process_ip job-0.job", hosts) == "--main_process_ip 127.0.0.2"
    assert rewrite_hosts("tcp://job-0.job.ns.svc.cluster.local:29500", hosts) == "tcp://127.0.0.2:29500"
    assert rewrite_hosts("myjob-0.job", hosts) == "myjob-0.job"
    assert rewrite_hosts("job-0.jobs", hosts) == "job-0.jobs"
