"""The operator lists and watches only kubetune's Pods, Jobs, ConfigMaps and Services.

A cluster has many Pods; with a client-side filter (kopf's `labels=`) the API server still
sends every one of them to the operator. A `labelSelector` on the list and watch requests
makes the server filter (https://kubernetes.io/docs/reference/using-api/api-concepts/
#efficient-detection-of-changes and .../working-with-objects/labels/#list-and-watch-filtering).
The test records the queries the API server receives (a spy on the emulator's request entry
point; the emulator itself answers).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubetune.emulator.server import ApiServerEmulator

from .cluster import wait_for

SELECTOR = "app.kubernetes.io/managed-by=kubetune"


@pytest.fixture
def queries(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, str, str | None]]]:
    seen: list[tuple[str, str, str | None]] = []
    serve = ApiServerEmulator._serve_resource

    async def spy(self, raw_request, path, *args, **kwargs):
        if raw_request.method == "GET" and path.name is None:
            kind = "watch" if raw_request.query.get("watch") in ("true", "1") else "list"
            seen.append((path.plural, kind, raw_request.query.get("labelSelector")))
        return await serve(self, raw_request, path, *args, **kwargs)

    monkeypatch.setattr(ApiServerEmulator, "_serve_resource", spy)
    yield seen


def test_child_watches_carry_a_server_side_label_selector(queries, api, operator):
    watched = lambda: {plural for plural, kind, _ in queries if kind == "watch"}  # noqa: E731
    wait_for(lambda: {"pods", "jobs"} <= watched(), what="watches of Pods and Jobs")
    # ConfigMaps and Services too: their deletion frees a name a job waits for.
    wait_for(lambda: {"configmaps", "services"} <= watched(), what="the other children")
    children = [q for q in queries if q[0] in {"pods", "jobs", "configmaps", "services"}]
    assert all(selector == SELECTOR for _, _, selector in children), children
