"""Columns and cells of `kubectl get` for the built-in kinds users look at here.

kube-apiserver prints these itself (kubernetes pkg/printers/internalversion/printers.go,
`AddHandlers` for the column definitions, `printPod`, `printJob`, `printEvent` and
`printNamespace` for the cells). The server always fills the wide cells (priority 1);
kubectl shows them only with `-o wide`. Resources without a printer here get NAME and AGE.

Not covered: restartable (sidecar) init containers in a pod's READY count, and the
"N (Xm ago)" form of RESTARTS (the local executor never restarts a container).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

Object = dict[str, Any]
Column = dict[str, Any]

_NAME_DOC = "Name must be unique within a namespace."
_AGE_DOC = "CreationTimestamp is a timestamp representing the server time when this object was created."


def _column(name: str, description: str, *, priority: int = 0, kind: str = "string",
            fmt: str = "") -> Column:
    return {"name": name, "type": kind, "format": fmt, "priority": priority,
            "description": description}


NAME_COLUMN = _column("Name", _NAME_DOC, fmt="name")
AGE_COLUMN = _column("Age", _AGE_DOC)


def parse_time(value: str | None) -> datetime.datetime | None:
    """RFC 3339 time or MicroTime (`...05.123456Z`) as an aware datetime."""
    if not value:
        return None
    try:
        return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def human_duration(seconds: float) -> str:
    """apimachinery's duration.HumanDuration: 45s, 3m2s, 95m, 5h3m, 30h, 3d4h, 20d, 2y3d."""
    whole = int(seconds)
    if whole < -1:
        return "<invalid>"
    if whole < 0:
        return "0s"
    if whole < 120:
        return f"{whole}s"
    minutes = whole // 60
    if minutes < 10:
        return f"{minutes}m{whole % 60}s" if whole % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = whole // 3600
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d{hours % 24}h" if hours % 24 else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        years, days = hours // 24 // 365, (hours // 24) % 365
        return f"{years}y{days}d" if days else f"{years}y"
    return f"{hours // 24 // 365}y"


def since(timestamp: str | None, now: datetime.datetime | None = None) -> str:
    """printers.go translateTimestampSince: `<unknown>` for a missing time."""
    moment = parse_time(timestamp)
    if moment is None:
        return "<unknown>"
    return human_duration(((now or datetime.datetime.now(datetime.UTC)) - moment).total_seconds())


def _age(obj: Object) -> str:
    return since(obj["metadata"].get("creationTimestamp"))


# --- Pods ----------------------------------------------------------------------------------

POD_COLUMNS = [
    NAME_COLUMN,
    _column("Ready", "The aggregate readiness state of this pod for accepting traffic."),
    _column("Status", "The aggregate status of the containers in this pod."),
    _column("Restarts", "The number of times the containers in this pod have been restarted "
                        "and when the last container in this pod has restarted."),
    AGE_COLUMN,
    _column("IP", "podIP address allocated to the pod.", priority=1),
    _column("Node", "NodeName indicates in which node this pod is scheduled.", priority=1),
    _column("Nominated Node", "nominatedNodeName is set when this pod preempts other pods.",
            priority=1),
    _column("Readiness Gates", "If specified, all readiness gates will be evaluated for pod "
                               "readiness.", priority=1),
]


def _has_true_condition(status: Object, kind: str) -> bool:
    return any(c.get("type") == kind and c.get("status") == "True"
               for c in status.get("conditions") or [])


def _init_reason(spec: Object, status: Object) -> str | None:
    """The `Init:...` status while an init container has not succeeded (printPod)."""
    total = len(spec.get("initContainers") or [])
    for index, container in enumerate(status.get("initContainerStatuses") or []):
        state = container.get("state") or {}
        terminated, waiting = state.get("terminated"), state.get("waiting")
        if terminated is not None and terminated.get("exitCode") == 0:
            continue
        if terminated is not None:
            if terminated.get("reason"):
                return "Init:" + terminated["reason"]
            if terminated.get("signal"):
                return f"Init:Signal:{terminated['signal']}"
            return f"Init:ExitCode:{terminated.get('exitCode', 0)}"
        if waiting is not None and waiting.get("reason") and waiting["reason"] != "PodInitializing":
            return "Init:" + waiting["reason"]
        return f"Init:{index}/{total}"
    return None


def pod_cells(pod: Object) -> list[Any]:
    spec, status, meta = pod.get("spec") or {}, pod.get("status") or {}, pod["metadata"]
    phase = status.get("phase") or ""
    reason = status.get("reason") or phase
    for condition in status.get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("reason") == "SchedulingGated":
            reason = "SchedulingGated"
    restarts = sum(int(c.get("restartCount") or 0) for c in status.get("initContainerStatuses") or [])
    ready = 0
    init_reason = _init_reason(spec, status)
    if init_reason is not None:
        reason = init_reason
    if init_reason is None or _has_true_condition(status, "Initialized"):
        restarts = 0
        running = False
        for container in reversed(status.get("containerStatuses") or []):
            restarts += int(container.get("restartCount") or 0)
            state = container.get("state") or {}
            waiting, terminated = state.get("waiting"), state.get("terminated")
            if waiting is not None and waiting.get("reason"):
                reason = waiting["reason"]
            elif terminated is not None and terminated.get("reason"):
                reason = terminated["reason"]
            elif terminated is not None:
                reason = (f"Signal:{terminated['signal']}" if terminated.get("signal")
                          else f"ExitCode:{terminated.get('exitCode', 0)}")
            elif container.get("ready") and state.get("running") is not None:
                running = True
                ready += 1
        if reason == "Completed" and running:
            reason = "Running" if _has_true_condition(status, "Ready") else "NotReady"
    if meta.get("deletionTimestamp") and status.get("reason") == "NodeLost":
        reason = "Unknown"
    elif meta.get("deletionTimestamp") and phase not in ("Succeeded", "Failed"):
        reason = "Terminating"
    ips = status.get("podIPs") or []
    gates = spec.get("readinessGates") or []
    gates_cell = "<none>"
    if gates:
        true_conditions = sum(1 for gate in gates
                              if _has_true_condition(status, gate.get("conditionType", "")))
        gates_cell = f"{true_conditions}/{len(gates)}"
    return [meta["name"], f"{ready}/{len(spec.get('containers') or [])}", reason, str(restarts),
            _age(pod), (ips[0].get("ip") if ips else "") or "<none>",
            spec.get("nodeName") or "<none>", status.get("nominatedNodeName") or "<none>",
            gates_cell]


# --- Jobs ----------------------------------------------------------------------------------

JOB_COLUMNS = [
    NAME_COLUMN,
    _column("Status", "Status of the job."),
    _column("Completions", "The number of pods which reached phase Succeeded."),
    _column("Duration", "Time required to complete the job."),
    AGE_COLUMN,
    _column("Containers", "Names of each container in the template.", priority=1),
    _column("Images", "Images referenced by each container in the template.", priority=1),
    _column("Selector", "A label query over pods that should match the pod count.", priority=1),
]


def _format_selector(selector: Object | None) -> str:
    """metav1.FormatLabelSelector: `a=b,c in (d,e)`, `<none>` when empty."""
    if not selector:
        return "<none>"
    parts = [f"{key}={value}" for key, value in (selector.get("matchLabels") or {}).items()]
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values") or []
        if operator == "Exists":
            parts.append(key)
        elif operator == "DoesNotExist":
            parts.append("!" + key)
        else:
            parts.append(f"{key} {operator.lower()} ({','.join(values)})")
    return ",".join(parts) or "<none>"


def job_cells(job: Object) -> list[Any]:
    spec, status = job.get("spec") or {}, job.get("status") or {}
    succeeded = status.get("succeeded") or 0
    if spec.get("completions") is not None:
        completions = f"{succeeded}/{spec['completions']}"
    elif (spec.get("parallelism") or 0) > 1:
        completions = f"{succeeded}/1 of {spec['parallelism']}"
    else:
        completions = f"{succeeded}/1"
    started, finished = parse_time(status.get("startTime")), parse_time(status.get("completionTime"))
    duration = ""
    if started is not None and finished is None:
        duration = human_duration((datetime.datetime.now(datetime.UTC) - started).total_seconds())
    elif started is not None and finished is not None:
        duration = human_duration((finished - started).total_seconds())
    if _has_true_condition(status, "Complete"):
        state = "Complete"
    elif _has_true_condition(status, "Failed"):
        state = "Failed"
    elif job["metadata"].get("deletionTimestamp"):
        state = "Terminating"
    elif _has_true_condition(status, "Suspended"):
        state = "Suspended"
    elif _has_true_condition(status, "FailureTarget"):
        state = "FailureTarget"
    else:
        state = "Running"
    containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
    return [job["metadata"]["name"], state, completions, duration, _age(job),
            ",".join(c.get("name", "") for c in containers),
            ",".join(c.get("image", "") for c in containers),
            _format_selector(spec.get("selector"))]


# --- Events (core/v1 and events.k8s.io/v1, which name the same fields differently) ---------

EVENT_COLUMNS = [
    _column("Last Seen", "The time at which the most recent occurrence of this event was recorded."),
    _column("Type", "Type of this event (Normal, Warning), new types could be added in the future"),
    _column("Reason", "This should be a short, machine understandable string that gives the "
                      "reason for the transition into the object's current status."),
    _column("Object", "The object that this event is about."),
    _column("Subobject", "If referring to a piece of an object instead of an entire object, "
                         "this string should contain a valid JSON/Go field access statement.",
            priority=1),
    _column("Source", "The component reporting this event.", priority=1),
    _column("Message", "A human-readable description of the status of this operation."),
    _column("First Seen", "The time at which the event was first recorded.", priority=1),
    _column("Count", "The number of times this event has occurred.", priority=1),
    {**NAME_COLUMN, "priority": 1},
]


def event_cells(event: Object) -> list[Any]:
    involved = event.get("involvedObject") or event.get("regarding") or {}
    first = event.get("firstTimestamp") or event.get("deprecatedFirstTimestamp")
    last = event.get("lastTimestamp") or event.get("deprecatedLastTimestamp")
    first_seen = since(first) if first else since(event.get("eventTime"))
    last_seen = since(last) if last else first_seen
    count = event.get("count") or event.get("deprecatedCount") or 0
    series = event.get("series")
    if series:
        last_seen = since(series.get("lastObservedTime"))
        count = series.get("count") or 0
    elif not count:
        count = 1  # singleton events have no count in the new API
    kind = (involved.get("kind") or "").lower()
    target = f"{kind}/{involved['name']}" if involved.get("name") else kind
    source = event.get("source") or {}
    component = source.get("component") or event.get("reportingController") or ""
    host = source.get("host") or event.get("reportingInstance") or ""
    return [last_seen, event.get("type", ""), event.get("reason", ""), target,
            involved.get("fieldPath", ""), f"{component}, {host}" if host else component,
            (event.get("message") or event.get("note") or "").strip(), first_seen, int(count),
            event["metadata"]["name"]]


# --- Namespaces ----------------------------------------------------------------------------

NAMESPACE_COLUMNS = [NAME_COLUMN, _column("Status", "The status of the namespace"), AGE_COLUMN]


def namespace_cells(namespace: Object) -> list[Any]:
    return [namespace["metadata"]["name"], (namespace.get("status") or {}).get("phase", ""),
            _age(namespace)]


# (group, plural) -> columns and the cells of one object, as kube-apiserver prints them.
BUILTIN_PRINTERS: dict[tuple[str, str], tuple[list[Column], Callable[[Object], list[Any]]]] = {
    ("", "pods"): (POD_COLUMNS, pod_cells),
    ("batch", "jobs"): (JOB_COLUMNS, job_cells),
    ("", "events"): (EVENT_COLUMNS, event_cells),
    ("events.k8s.io", "events"): (EVENT_COLUMNS, event_cells),
    ("", "namespaces"): (NAMESPACE_COLUMNS, namespace_cells),
}
