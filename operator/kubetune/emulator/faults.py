"""Fault injection: the API server misbehaving on purpose, as kube-apiserver does under load.

Controllers are trusted because they converge through API errors, dropped watches,
conflicts and restarts; this module lets a test or `kubetune local up --faults SPEC` make
the emulator produce those, each in kube-apiserver's own shape:

- `500`: `InternalError` Status (apimachinery `NewInternalError`: message "Internal error
  occurred: ...", `details.causes`), e.g. an etcd leader change.
- `503`: `ServiceUnavailable` Status (`NewServiceUnavailable`).
- `429`: what API Priority and Fairness answers when a priority level's queues are full:
  a plain-text body "Too many requests, please try again later." with a `Retry-After`
  header (k8s.io/apiserver `tooManyRequests`, which calls Go's `http.Error`), not JSON.
- `409`: `Conflict` Status on PUT and PATCH ("the object has been modified; please apply
  your changes to the latest version and try again"): an update that lost a race.
- `504`: the write is committed, then the reply is a `Timeout` Status (`NewTimeoutError`,
  "request did not complete within requested timeout"): the client cannot tell whether
  its create happened, so it must cope with `AlreadyExists` when it retries.
- `cut`: a watch stream dropped mid-stream (the connection closes without the final
  chunk), after a few events or a short while, as a load balancer or apiserver restart does.
- `gone`: a watch resumed from a resourceVersion gets an ERROR event carrying a
  `410 Expired` Status ("too old resource version"), as when the watch cache has moved on;
  the client must list again.
Bookmarks (`allowWatchBookmarks=true`) are no fault but a feature the emulator always
serves; `bookmarks=SECONDS` shortens their interval (kube-apiserver: about a minute).

SPEC is comma-separated `key=value` items, e.g. `rate=0.05,seed=7` or
`rate=0.2,kinds=429+cut+gone,latency=20,agents=kopf+kubetune`:

    rate=F         fraction (0-1) of API requests that get a fault (default 0)
    kinds=A+B      which faults (default all): 500 503 429 409 504 cut gone
    latency=MS     every affected request waits uniformly 0..MS milliseconds first
    retry-after=S  the Retry-After seconds of 429 answers (default 1)
    bookmarks=S    seconds between BOOKMARK events on watches that ask for them
    agents=A+B     only requests whose User-Agent contains one of these (default: all)
    seed=N         the seed (default 0)

Replayable: whether a request is faulted depends only on the seed, the request (method,
path, query, client) and how many times that same request was made before, never on how
requests of different objects interleave. Only resource paths get faults; discovery,
health and OpenAPI paths are served as usual.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

import aiohttp.web

from kubetune.emulator import errors
from kubetune.emulator.paths import ResourcePath

FAULT_KINDS = ("500", "503", "429", "409", "504", "cut", "gone")
_REFUSALS = ("500", "503", "429")
_WRITES = ("POST", "PUT", "PATCH", "DELETE")
TOO_MANY_REQUESTS_TEXT = "Too many requests, please try again later.\n"


class FaultSpecError(ValueError):
    """A --faults SPEC that cannot be used; the message names the item and what must hold."""


@dataclass(frozen=True)
class FaultSpec:
    rate: float = 0.0
    kinds: tuple[str, ...] = FAULT_KINDS
    latency_ms: float = 0.0
    retry_after: int = 1
    bookmarks: float | None = None
    agents: tuple[str, ...] = ()
    seed: int = 0

    @classmethod
    def parse(cls, text: str) -> FaultSpec:
        """`rate=0.05,kinds=500+429,seed=3` -> FaultSpec (see the module docstring)."""
        spec = cls()
        for item in (part.strip() for part in text.split(",")):
            if not item:
                continue
            key, equals, value = item.partition("=")
            if not equals or not value:
                raise FaultSpecError(f"faults: {item!r} must be KEY=VALUE")
            spec = replace(spec, **{_FIELDS.get(key, key): _parse_value(key, value)})
        return spec

    def render(self) -> str:
        """The SPEC text that parses back to this spec (for logs, to replay a run)."""
        items = [f"rate={self.rate:g}", f"kinds={'+'.join(self.kinds)}", f"seed={self.seed}"]
        if self.latency_ms:
            items.append(f"latency={self.latency_ms:g}")
        if self.retry_after != 1:
            items.append(f"retry-after={self.retry_after}")
        if self.bookmarks is not None:
            items.append(f"bookmarks={self.bookmarks:g}")
        if self.agents:
            items.append(f"agents={'+'.join(self.agents)}")
        return ",".join(items)


_FIELDS = {"latency": "latency_ms", "retry-after": "retry_after"}


def _parse_value(key: str, value: str) -> object:
    def number(low: float, high: float | None = None) -> float:
        try:
            parsed = float(value)
        except ValueError:
            parsed = float("nan")
        if not parsed >= low or (high is not None and parsed > high):
            bound = f"between {low:g} and {high:g}" if high is not None else f">= {low:g}"
            raise FaultSpecError(f"faults: {key} must be a number {bound}, got {value!r}")
        return parsed

    if key == "rate":
        return number(0, 1)
    if key == "latency":
        return number(0)
    if key == "bookmarks":
        if number(0) <= 0:
            raise FaultSpecError(f"faults: bookmarks must be > 0 seconds, got {value!r}")
        return float(value)
    if key in ("retry-after", "seed"):
        if not value.isdigit():
            raise FaultSpecError(f"faults: {key} must be a whole number >= 0, got {value!r}")
        return int(value)
    if key == "kinds":
        kinds = tuple(k for k in value.split("+") if k)
        unknown = [k for k in kinds if k not in FAULT_KINDS]
        if unknown or not kinds:
            raise FaultSpecError(f"faults: kinds must be some of {'+'.join(FAULT_KINDS)}, "
                                 f"got {value!r}")
        return kinds
    if key == "agents":
        return tuple(a for a in value.split("+") if a)
    raise FaultSpecError(f"faults: unknown key {key!r}; known: rate, kinds, latency, "
                         "retry-after, bookmarks, agents, seed")


@dataclass(frozen=True)
class Fault:
    """What happens to one request: a delay, and maybe one fault kind."""

    kind: str | None
    delay: float = 0.0
    cut_after_events: int = 0
    cut_after_seconds: float = 0.0


@dataclass
class FaultInjector:
    """Decides, per request, whether and how it fails; counts what it did."""

    spec: FaultSpec
    injected: Counter[str] = field(default_factory=Counter)
    """Faults injected, by kind."""
    requests: Counter[str] = field(default_factory=Counter)
    """Resource requests seen, by client (the User-Agent's product name)."""
    calls: Counter[tuple[str, str, str, str]] = field(default_factory=Counter)
    """Requests by (client, verb, resource, fault kind or ""): e.g. how often kopf listed
    finetunejobs, and how many of its watches of them were answered 410."""
    _seen: Counter[str] = field(default_factory=Counter)

    def decide(self, method: str, path_qs: str, user_agent: str, *, watch: bool,
               resuming: bool, verb: str = "", resource: str = "") -> Fault | None:
        fault = self._decide(method, path_qs, user_agent, watch=watch, resuming=resuming)
        agent = agent_name(user_agent)
        self.requests[agent] += 1
        self.calls[(agent, verb or method, resource, (fault.kind if fault else None) or "")] += 1
        return fault

    def _decide(self, method: str, path_qs: str, user_agent: str, *, watch: bool,
                resuming: bool) -> Fault | None:
        spec = self.spec
        if spec.agents and not any(a in user_agent for a in spec.agents):
            return None
        key = f"{spec.seed}|{user_agent}|{method}|{path_qs}"
        self._seen[key] += 1
        rng = random.Random(f"{key}|{self._seen[key]}")
        delay = rng.uniform(0, spec.latency_ms) / 1000 if spec.latency_ms else 0.0
        kind = None
        if rng.random() < spec.rate:
            candidates = [k for k in spec.kinds if _applies(k, method, watch, resuming)]
            kind = rng.choice(candidates) if candidates else None
        if kind is not None:
            self.injected[kind] += 1
        if kind is None and not delay:
            return None
        return Fault(kind, delay, cut_after_events=rng.randint(1, 20),
                     cut_after_seconds=rng.uniform(0.05, 2.0))


def _applies(kind: str, method: str, watch: bool, resuming: bool) -> bool:
    if kind in _REFUSALS:
        return True
    if kind == "409":
        return method in ("PUT", "PATCH")
    if kind == "504":
        return method in _WRITES
    if kind == "cut":
        return watch
    return kind == "gone" and watch and resuming


def agent_name(user_agent: str) -> str:
    """`kopf/1.45.2` -> `kopf`; `OpenAPI-Generator/37.0.2/python` -> `OpenAPI-Generator`."""
    return user_agent.split("/", 1)[0].split(" ", 1)[0] or "unknown"


Serve = Callable[[aiohttp.web.BaseRequest, ResourcePath, Fault | None],
                 Awaitable[aiohttp.web.StreamResponse]]


async def serve_with_faults(injector: FaultInjector | None, raw_request: aiohttp.web.BaseRequest,
                            path: ResourcePath, serve: Serve) -> aiohttp.web.StreamResponse:
    """Serve a resource request, first deciding its fault (the hook at the request entry)."""
    if injector is None:
        return await serve(raw_request, path, None)
    query = raw_request.query
    watch = raw_request.method == "GET" and (path.legacy_watch or query.get("watch") in ("true", "1"))
    fault = injector.decide(raw_request.method, raw_request.path_qs,
                            raw_request.headers.get("User-Agent", ""), watch=watch,
                            resuming=query.get("resourceVersion") not in (None, "", "0"),
                            verb=_verb(raw_request.method, path, watch), resource=path.plural)
    if fault is None:
        return await serve(raw_request, path, None)
    if fault.delay:
        await asyncio.sleep(fault.delay)
    if fault.kind in _REFUSALS:
        return refusal(fault.kind, injector.spec.retry_after)
    if fault.kind == "409":
        raise errors.stale_resource_version(path.group, path.plural, path.name or "")
    if fault.kind == "504":
        with contextlib.suppress(errors.ApiError):  # committed or not: the reply is lost
            await serve(raw_request, path, None)
        raise timeout_error()
    return await serve(raw_request, path, fault)  # cut and gone: the watch plays them


def _verb(method: str, path: ResourcePath, watch: bool) -> str:
    """The Kubernetes verb of a request (as in RBAC and audit logs)."""
    if method == "GET":
        return "watch" if watch else "get" if path.name else "list"
    return {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(
        method, "delete" if path.name else "deletecollection")


def refusal(kind: str, retry_after: int) -> aiohttp.web.Response:
    """The reply to a request refused before it reached storage."""
    if kind == "429":
        return aiohttp.web.Response(
            status=429, text=TOO_MANY_REQUESTS_TEXT, content_type="text/plain", charset="utf-8",
            headers={"Retry-After": str(retry_after), "X-Content-Type-Options": "nosniff"})
    error = internal_error() if kind == "500" else service_unavailable()
    return aiohttp.web.Response(body=json.dumps(error.status_body()).encode(), status=error.code,
                                content_type="application/json")


def internal_error() -> errors.ApiError:
    cause = "etcdserver: leader changed"
    return errors.ApiError(500, "InternalError", f"Internal error occurred: {cause}",
                           {"causes": [{"message": cause}]})


def service_unavailable() -> errors.ApiError:
    return errors.ApiError(503, "ServiceUnavailable",
                           "the server is currently unable to handle the request")


def timeout_error() -> errors.ApiError:
    return errors.ApiError(
        504, "Timeout",
        "Timeout: request did not complete within requested timeout - context deadline exceeded")
