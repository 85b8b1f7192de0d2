"""The `kubetune` command line: validate manifests, generate CRDs, plan memory, run things.

Each subcommand imports what it needs when it runs, so `kubetune validate` stays quick and
works where the operator's or the trainer's dependencies are not installed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kubetune", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in _COMMANDS:
        register(commands)
    args = parser.parse_args(argv)
    return args.run(args)


def _validate_command(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "validate",
        help="check kubetune manifests against the CRD schema and the API's rules",
        description="Prints one line per problem as NAME: FIELD_PATH: what must hold. "
        "Exits 0 when every document is valid, 1 otherwise.",
    )
    parser.add_argument("-f", "--filename", action="append", required=True, metavar="FILE",
                        help="a YAML file, a folder of them, or - for standard input; repeatable")
    parser.add_argument("--runtime", action="append", default=[], metavar="FILE",
                        help="ClusterFinetuneRuntime/FinetuneRuntime manifests (a file or folder; "
                        "repeatable): also resolve each job against them, as the operator would")
    parser.set_defaults(run=_run_validate)


def _run_validate(args: argparse.Namespace) -> int:
    from .validation import Problem, runtime_resolution_problems, validate_texts

    problems: list[Problem] = []
    sources = list(_read_manifests(args.filename, problems))
    runtime_sources = list(_read_manifests(args.runtime, problems))
    count, found = validate_texts(sources + runtime_sources)
    problems += found
    if args.runtime and not problems:
        problems += runtime_resolution_problems(sources, runtime_sources)
    for problem in problems:
        print(problem)
    if not problems:
        print(f"{count} document{'s' if count != 1 else ''} valid")
    return 1 if problems or count == 0 else 0


def _read_manifests(names: list[str], problems: list) -> Iterator[tuple[str, str]]:
    """(label, text) of every manifest named; unreadable ones become problems."""
    from .validation import Problem

    for name in names:
        if name == "-":
            files: list[Path | None] = [None]
        else:
            path = Path(name)
            files = (
                sorted(p for p in path.rglob("*") if p.suffix in MANIFEST_SUFFIXES and p.is_file())
                if path.is_dir() else [path]
            )
        for file in files:
            label = "<stdin>" if file is None else str(file)
            try:
                yield label, _read_text(file)
            except OSError as error:
                problems.append(Problem(label, "(file)", f"cannot be read: {error}"))
            except ValueError as error:
                problems.append(Problem(label, "(file)", str(error)))


def _read_text(file: Path | None) -> str:
    """The text of a file (None: standard input), reading no more than the size bound allows."""
    from .validation import MAX_BYTES, too_large

    if file is None:
        data = sys.stdin.buffer.read(MAX_BYTES + 1)
    else:
        with file.open("rb") as stream:
            data = stream.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise ValueError(too_large())
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValueError(f"is not UTF-8 text (byte {error.start})") from None


def _crds_command(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("crds", help="generate the CRD YAML from the API models")
    parser.add_argument("-o", "--output-dir", default="crds", type=Path)
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if the files differ from what the models generate")
    parser.set_defaults(run=_run_crds)


def _run_crds(args: argparse.Namespace) -> int:
    from .api.resources import RESOURCES
    from .crdgen import crd_yaml, write_crds

    if args.check:
        stale = [
            r.crd_name for r in RESOURCES.values()
            if not (args.output_dir / f"{r.crd_name}.yaml").is_file()
            or (args.output_dir / f"{r.crd_name}.yaml").read_text() != crd_yaml(r)
        ]
        for name in stale:
            print(f"{args.output_dir}/{name}.yaml is out of date: run `make crds`")
        return 1 if stale else 0
    for path in write_crds(args.output_dir):
        print(f"wrote {path}")
    return 0


def _reference_command(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("reference", help="print the spec field reference (Markdown)")
    parser.add_argument("--update", type=Path, metavar="README",
                        help="rewrite the generated section of this file instead of printing")
    parser.set_defaults(run=_run_reference)


def _run_reference(args: argparse.Namespace) -> int:
    from .reference import field_reference, with_reference

    if args.update:
        args.update.write_text(with_reference(args.update.read_text()))
    else:
        print(field_reference(), end="")
    return 0


def _plan_command(commands: argparse._SubParsersAction) -> None:
    from .planner import cli as planner_cli

    parser = commands.add_parser("plan", help=planner_cli.HELP)
    planner_cli.add_arguments(parser)
    parser.set_defaults(run=planner_cli.run)


def _local_command(commands: argparse._SubParsersAction) -> None:
    from .local import cli as local_cli

    parser = commands.add_parser(
        "local", help="run kubetune on this machine: API emulator, operator and pod executor")
    local_cli.add_arguments(parser)
    parser.set_defaults(run=local_cli.run)


def _quickstart_command(commands: argparse._SubParsersAction) -> None:
    from .local import quickstart

    parser = commands.add_parser(
        "quickstart", help="finetune and evaluate the example model end to end on this machine")
    quickstart.add_arguments(parser)
    parser.set_defaults(run=quickstart.run)


def _operator_command(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "operator", help="run the operator (configuration from KUBETUNE_* environment variables)")
    parser.add_argument("--log-format", choices=["plain", "json"], default="plain")
    parser.set_defaults(run=_run_operator)


def _run_operator(args: argparse.Namespace) -> int:
    import asyncio

    from .operator.runner import configure_logging, run_operator
    from .operator.settings import Settings, SettingsError

    configure_logging(json_format=args.log_format == "json")
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        print(f"kubetune operator: {error}", file=sys.stderr)
        return 1
    asyncio.run(run_operator(settings))
    return 0


def _policy_command(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("policy", help="ClusterFinetunePolicy tools")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    check = actions.add_parser(
        "check", help="explain which ClusterFinetunePolicy rules jobs break, offline",
        description="Judges each FinetuneJob and EvalJob against the policies with the rules "
        "and messages of the operator and the chart's admission policy. Prints one line per "
        "broken rule. Exits 0 when no rule is broken, 1 when one is, 2 when a manifest is "
        "invalid. Budgets (maxRunningJobs, gpuHourBudget) depend on other jobs: the operator "
        "checks them when a job would start.")
    check.add_argument("-f", "--filename", action="append", required=True, metavar="FILE",
                       help="jobs: a YAML file, a folder of them, or - for standard input")
    check.add_argument("--policy", action="append", required=True, metavar="FILE",
                       help="ClusterFinetunePolicy manifests (a file or folder; repeatable)")
    check.add_argument("--namespace-labels", metavar="K=V,...",
                       help="labels of the jobs' namespace, for the policies' "
                       "namespaceSelector (default: every policy applies)")
    check.set_defaults(run=_run_policy_check)


def _run_policy_check(args: argparse.Namespace) -> int:
    from .policies.check import check
    from .validation import Problem, parse_documents, validate_texts

    problems: list[Problem] = []
    jobs_text = list(_read_manifests(args.filename, problems))
    policies_text = list(_read_manifests(args.policy, problems))
    _, found = validate_texts(jobs_text + policies_text)
    problems += found
    labels = None
    if args.namespace_labels is not None:
        pairs = [p for p in args.namespace_labels.split(",") if p]
        if any("=" not in p for p in pairs):
            problems.append(Problem("--namespace-labels", "(option)",
                                    "must be KEY=VALUE pairs separated by commas"))
        labels = dict(p.split("=", 1) for p in pairs if "=" in p)
    for problem in problems:
        print(problem)
    if problems:
        return 2

    def documents(sources: list[tuple[str, str]], kinds: tuple[str, ...]) -> list[dict]:
        return [d for label, text in sources for d in parse_documents(text, label)[0]
                if isinstance(d, dict) and d.get("kind") in kinds]

    policies = documents(policies_text, ("ClusterFinetunePolicy",))
    jobs = documents(jobs_text, ("FinetuneJob", "EvalJob"))
    if not policies or not jobs:
        print("no ClusterFinetunePolicy in --policy" if not policies
              else "no FinetuneJob or EvalJob in -f")
        return 2
    report = check(jobs, policies, labels)
    print("\n".join(report.lines))
    return 1 if report.broken else 0


_COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    _policy_command, _validate_command, _crds_command, _reference_command, _plan_command, _operator_command,
    _local_command, _quickstart_command,
]


if __name__ == "__main__":
    sys.exit(main())
