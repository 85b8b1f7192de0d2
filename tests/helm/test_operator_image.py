"""operator/Dockerfile builds a slim, non-root operator image without torch."""

from __future__ import annotations

import json
import re
import shlex

from .chart import REPO_ROOT, render

DOCKERFILE = REPO_ROOT / "operator" / "Dockerfile"


def instructions(path=DOCKERFILE) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    logical, current = [], ""
    for line in path.read_text().splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    return [(text.split(None, 1)[0].upper(), text.split(None, 1)[1].strip()) for text in logical]


def final_stage() -> list[tuple[str, str]]:
    steps = instructions()
    last_from = max(i for i, (op, _) in enumerate(steps) if op == "FROM")
    return steps[last_from:]


def args_of(default_args: dict[str, str], value: str) -> str:
    return re.sub(r"\$\{(\w+)\}", lambda m: default_args[m.group(1)], value)


def test_base_is_slim_python_3_11():
    steps = instructions()
    defaults = dict(arg.split("=", 1) for op, arg in steps if op == "ARG" and "=" in arg)
    bases = [args_of(defaults, arg).split()[0] for op, arg in steps if op == "FROM"]
    assert bases and all(base == "python:3.11-slim" for base in bases), bases


def test_runs_as_uid_1000_like_the_chart_says():
    users = [arg for op, arg in final_stage() if op == "USER"]
    assert users and users[-1].split(":")[0] == "1000"
    pod = render().deployment()["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] == int(users[-1].split(":")[0])


def test_installs_the_operator_without_the_trainer_stack():
    installs = [shlex.split(command) for op, command in instructions() if op == "RUN"
                for command in re.split(r"&&|;", command) if re.search(r"\bpip3? install\b", command)]
    assert installs, "no pip install in operator/Dockerfile"
    for install in installs:
        targets = [arg for arg in install[install.index("install") + 1:] if not arg.startswith("-")]
        assert targets, install
        for target in targets:
            assert re.fullmatch(r"\.(\[(local)\])?", target), f"installs {target!r}"
            assert "trainer" not in target and "torch" not in target
    copied = " ".join(arg for op, arg in instructions() if op == "COPY")
    assert "trainer-image" not in copied


def test_entrypoint_runs_the_operator_like_the_chart():
    entrypoint = json.loads(next(arg for op, arg in final_stage() if op == "ENTRYPOINT"))
    command = json.loads(next(arg for op, arg in final_stage() if op == "CMD"))
    assert entrypoint == ["kubetune", "operator"]
    container = render().operator_container()
    assert container["command"] == entrypoint
    assert container["args"] == command  # the chart's default log format is the image's


def test_image_exposes_the_default_ports():
    exposed = {int(port) for op, arg in final_stage() if op == "EXPOSE" for port in arg.split()}
    ports = {p["containerPort"] for p in render().operator_container()["ports"]}
    assert exposed == ports == {8080, 8081}
