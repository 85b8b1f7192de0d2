"""Putting the emulator on a port: in the caller's event loop, or in a background thread.

`EmulatorServer` is an async context manager for tests and for running next to kopf in
one loop. `EmulatorThread` owns a loop in a daemon thread, for callers that are not async
or that want the emulator out of the operator's loop (the local cluster).

aiohttp's low-level server is used with `handler_cancellation=True`, so a watch whose
client went away is cancelled at once instead of waiting for its next event.
"""

from __future__ import annotations

import asyncio
import pathlib
import socket
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self, TypeVar

import aiohttp.web

from kubetune.emulator.kubeconfig import DUMMY_TOKEN, write_kubeconfig
from kubetune.emulator.server import ApiServerEmulator

T = TypeVar("T")
_SHUTDOWN_TIMEOUT_SECONDS = 0.25


class EmulatorServer:
    """Serve an `ApiServerEmulator` on `host:port` (port 0 picks a free one).

    Usage::

        async with EmulatorServer(crds="crds/") as server:
            server.write_kubeconfig(tmp_path / "kubeconfig")
            ...  # server.url, server.emulator
    """

    def __init__(self, emulator: ApiServerEmulator | None = None, *, host: str = "127.0.0.1",
                 port: int = 0, crds: str | pathlib.Path | None = None) -> None:
        self.emulator = emulator if emulator is not None else ApiServerEmulator()
        self.host = host
        self._requested_port = port
        self._crds = crds
        self._runner: aiohttp.web.ServerRunner | None = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("the emulator is not serving yet")
        return f"http://{self.host}:{self.port}"

    def write_kubeconfig(self, path: str | pathlib.Path, namespace: str = "default",
                         token: str = DUMMY_TOKEN) -> pathlib.Path:
        """Write a kubeconfig for kubectl, kopf and `kubernetes.config.load_kube_config`
        (as the cluster admin, or as whoever `token` was issued to)."""
        return write_kubeconfig(path, self.url, namespace, token)

    async def start(self) -> None:
        if self._crds is not None:
            self.emulator.install_crds_from(self._crds)
        await self.emulator.__aenter__()  # kmock's DSL needs its feeder task running
        self.emulator.garbage_collector.start()
        server = aiohttp.web.Server(self.emulator, handler_cancellation=True)
        self._runner = aiohttp.web.ServerRunner(server, shutdown_timeout=_SHUTDOWN_TIMEOUT_SECONDS)
        await self._runner.setup()
        # Bind the socket here, so that port 0 gives us the port the OS picked.
        listening = socket.create_server((self.host, self._requested_port))
        await aiohttp.web.SockSite(self._runner, listening).start()
        self.port = listening.getsockname()[1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            await self.emulator.garbage_collector.stop()
            await self.emulator.__aexit__(None, None, None)
        self.port = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.stop()


class EmulatorThread:
    """An `EmulatorServer` running in its own event loop on a daemon thread.

    Usage::

        with EmulatorThread(crds="crds/") as cluster:
            cluster.write_kubeconfig("kubeconfig")
            cluster.call(lambda emulator: emulator.store.resource_version)
    """

    def __init__(self, emulator: ApiServerEmulator | None = None, *, host: str = "127.0.0.1",
                 port: int = 0, crds: str | pathlib.Path | None = None) -> None:
        self._server_args: dict[str, Any] = {"emulator": emulator, "host": host, "port": port,
                                             "crds": crds}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: EmulatorServer | None = None
        self._stopping: asyncio.Event | None = None

    @property
    def server(self) -> EmulatorServer:
        if self._server is None:
            raise RuntimeError("the emulator thread is not running")
        return self._server

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def emulator(self) -> ApiServerEmulator:
        """The emulator itself; touch its state only through `call()` (it is not thread-safe)."""
        return self.server.emulator

    def write_kubeconfig(self, path: str | pathlib.Path, namespace: str = "default",
                         token: str = DUMMY_TOKEN) -> pathlib.Path:
        return self.server.write_kubeconfig(path, namespace, token)

    def start(self, timeout: float = 10.0) -> Self:
        started = threading.Event()
        failure: list[BaseException] = []

        async def serve() -> None:
            self._stopping = asyncio.Event()
            try:
                self._server = EmulatorServer(**self._server_args)
                await self._server.start()
            except BaseException as exc:
                failure.append(exc)
                started.set()
                raise
            started.set()
            try:
                await self._stopping.wait()
            finally:
                await self._server.stop()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            try:
                self._loop.run_until_complete(serve())
            except BaseException:  # reported to start() through `failure`
                pass
            finally:
                self._loop.close()

        self._thread = threading.Thread(target=run, name="kubetune-emulator", daemon=True)
        self._thread.start()
        if not started.wait(timeout):
            raise TimeoutError("the emulator did not start in time")
        if failure:
            raise failure[0]
        return self

    def call(self, function: Callable[[ApiServerEmulator], T], timeout: float = 10.0) -> T:
        """Run `function(emulator)` on the emulator's loop and return its result."""
        if self._loop is None:
            raise RuntimeError("the emulator thread is not running")

        async def run() -> T:
            return function(self.emulator)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        if self._loop is not None and self._stopping is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stopping.set)
        if self._thread is not None:
            self._thread.join(timeout)
        self._thread = None
        self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None,
                 exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
