"""The executor as the Job controller and kubelet: Jobs become pods that run as processes."""

from __future__ import annotations

import json

from .helpers import JOBS, RestApi, condition, job_manifest, wait_until

# Paths reach the program through its arguments and env, where the executor rewrites them.
WRITES_SUMMARY = """
import json, os, pathlib, sys
greeting = pathlib.Path(sys.argv[1]).read_text()
pathlib.Path(os.environ['KUBETUNE_TERMINATION_LOG']).write_text(json.dumps({'said': greeting}))
"""


def test_plain_job_succeeds_with_termination_message_and_config_map_file(api: RestApi) -> None:
    api.create("/api/v1/namespaces/default/configmaps",
               {"metadata": {"name": "greeting"}, "data": {"hello.txt": "hi there"}})
    api.create(JOBS, job_manifest(
        "plain", WRITES_SUMMARY,
        env=[{"name": "KUBETUNE_TERMINATION_LOG", "value": "/dev/termination-log"}],
        pod={"volumes": [{"name": "greeting", "configMap": {"name": "greeting"}}]},
        container={"volumeMounts": [{"name": "greeting", "mountPath": "/etc/greeting"}],
                   "args": ["/etc/greeting/hello.txt"]},
    ))
    job = wait_until(lambda: condition(api.job("plain"), "Complete") and api.job("plain"),
                     message="Job Complete")
    assert job["status"]["succeeded"] == 1
    assert job["status"]["completionTime"] and job["status"]["startTime"]
    [pod] = api.pods_of("plain")
    assert pod["status"]["phase"] == "Succeeded"
    assert pod["metadata"]["name"].startswith("plain-") and len(pod["metadata"]["name"]) == len("plain-") + 5
    assert pod["metadata"]["labels"]["app"] == "plain"
    assert pod["metadata"]["labels"]["job-name"] == "plain"
    assert pod["metadata"]["ownerReferences"][0]["uid"] == job["metadata"]["uid"]
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["exitCode"] == 0 and terminated["reason"] == "Completed"
    assert json.loads(terminated["message"]) == {"said": "hi there"}
    assert pod["status"]["podIP"].startswith("127.")


def test_failing_command_is_retried_up_to_backoff_limit(api: RestApi) -> None:
    api.create(JOBS, job_manifest("flaky", "import sys; sys.exit(3)", backoffLimit=1))
    failed = wait_until(lambda: condition(api.job("flaky"), "Failed"), message="Job Failed")
    assert failed["reason"] == "BackoffLimitExceeded"
    pods = api.pods_of("flaky")
    assert len(pods) == 2
    for pod in pods:
        assert pod["status"]["phase"] == "Failed"
        terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
        assert (terminated["exitCode"], terminated["reason"]) == (3, "Error")
    assert api.job("flaky")["status"]["failed"] == 2


def test_exit_code_in_pod_failure_policy_fails_the_job_at_once(api: RestApi) -> None:
    policy = {"rules": [{"action": "FailJob", "onExitCodes": {
        "containerName": "main", "operator": "In", "values": [2]}}]}
    api.create(JOBS, job_manifest("bad-input", "import sys; sys.exit(2)", backoffLimit=5,
                                  podFailurePolicy=policy))
    failed = wait_until(lambda: condition(api.job("bad-input"), "Failed"), message="Job Failed")
    assert failed["reason"] == "PodFailurePolicy"
    assert "exit code 2" in failed["message"]
    assert len(api.pods_of("bad-input")) == 1


def test_active_deadline_fails_the_job_and_stops_its_pod(api: RestApi) -> None:
    api.create(JOBS, job_manifest("slow", "import time; time.sleep(60)", activeDeadlineSeconds=1))
    failed = wait_until(lambda: condition(api.job("slow"), "Failed"), message="Job Failed")
    assert failed["reason"] == "DeadlineExceeded"
    wait_until(lambda: not api.pods_of("slow"), message="the pod to be deleted")
    assert not api.job("slow")["status"].get("active")
