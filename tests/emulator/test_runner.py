"""Starting the emulator: in a thread or in the caller's loop, on a free or given port, and
the kubeconfig it writes for the `kubernetes` client."""

from __future__ import annotations

import asyncio
import pathlib
import socket

import aiohttp
import kubernetes
import yaml
from kubetune.emulator import EmulatorServer, EmulatorThread


def test_kubeconfig_works_with_load_kube_config(tmp_path: pathlib.Path) -> None:
    with EmulatorThread() as cluster:
        path = cluster.write_kubeconfig(tmp_path / "kubeconfig")
        config = yaml.safe_load(path.read_text())
        assert config["clusters"][0]["cluster"]["server"] == cluster.url
        assert config["users"][0]["user"]["token"]
        configuration = kubernetes.client.Configuration()
        kubernetes.config.load_kube_config(config_file=str(path),
                                           client_configuration=configuration)
        with kubernetes.client.ApiClient(configuration) as client:
            names = [ns.metadata.name for ns in kubernetes.client.CoreV1Api(client)
                     .list_namespace().items]
        assert "default" in names


def test_thread_serves_on_a_given_port_and_stops(tmp_path: pathlib.Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cluster = EmulatorThread(port=port).start()
    assert cluster.url == f"http://127.0.0.1:{port}"
    assert cluster.call(lambda emulator: emulator.store.resource_version) > 0
    cluster.stop()
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0  # nothing listens any more


def test_async_server_in_the_callers_loop() -> None:
    async def scenario() -> dict:
        async with EmulatorServer() as server, aiohttp.ClientSession() as session:
            url = f"{server.url}/api/v1/namespaces/default/configmaps"
            async with session.post(url, json={"metadata": {"name": "c"}}) as response:
                assert response.status == 201
            async with session.get(f"{url}/c") as response:
                return await response.json()

    assert asyncio.run(scenario())["metadata"]["name"] == "c"


def test_open_watch_does_not_block_shutdown() -> None:
    async def scenario() -> None:
        async with EmulatorServer() as server, aiohttp.ClientSession() as session:
            response = await session.get(f"{server.url}/api/v1/configmaps?watch=true")
            assert response.status == 200
            await server.stop()  # a watch is still open
            response.close()

    asyncio.run(asyncio.wait_for(scenario(), timeout=5))
