"""config.json from file://, local folders, pvc://, the HF cache and a (local) Hub endpoint."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from kubetune.planner import ConfigSource, ConfigUnavailable

CONFIG = {"model_type": "llama", "hidden_size": 64}


def write_config(folder: Path, config: dict = CONFIG) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


@pytest.fixture
def hub():
    """A stand-in for huggingface.co on 127.0.0.1 that records each request."""
    requests: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            requests.append({"path": self.path, "auth": self.headers.get("Authorization")})
            if self.path == "/org/gated/resolve/main/config.json" and not self.headers.get("Authorization"):
                self.send_response(401)
                self.end_headers()
                return
            if self.path.startswith(("/org/model/", "/org/gated/")):
                body = json.dumps({**CONFIG, "served": self.path}).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args):  # keep test output quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", requests
    server.shutdown()
    server.server_close()


def source(tmp_path: Path, endpoint: str = "http://127.0.0.1:9", **kwargs) -> ConfigSource:
    return ConfigSource(hf_endpoint=endpoint, hf_cache=tmp_path / "hub", offline=False, **kwargs)


def test_file_uri_and_plain_folder(tmp_path):
    folder = write_config(tmp_path / "model")
    assert source(tmp_path).load(f"file://{folder}") == CONFIG
    assert source(tmp_path).load(str(folder)) == CONFIG
    assert source(tmp_path).load(f"file://{folder}/config.json") == CONFIG


def test_missing_file_says_which_path(tmp_path):
    with pytest.raises(ConfigUnavailable, match="does not exist") as info:
        source(tmp_path).load(f"file://{tmp_path}/nowhere")
    assert str(tmp_path / "nowhere") in info.value.reason


def test_invalid_json_is_reported(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ConfigUnavailable, match="not valid JSON"):
        source(tmp_path).load(str(tmp_path))


def test_pvc_uri_reads_under_the_claims_mount_root(tmp_path):
    write_config(tmp_path / "volumes" / "shared-models" / "qwen-0.5b")
    src = source(tmp_path, pvc_roots={"shared-models": tmp_path / "volumes" / "shared-models"})
    assert src.load("pvc://shared-models/qwen-0.5b") == CONFIG
    with pytest.raises(ConfigUnavailable, match="'other' is not mounted"):
        src.load("pvc://other/qwen-0.5b")
    with pytest.raises(ConfigUnavailable, match="leaves the claim"):
        src.load("pvc://shared-models/../../etc")


def test_hf_uri_is_fetched_from_the_endpoint_with_the_token_and_cached(tmp_path, hub):
    endpoint, requests = hub
    src = source(tmp_path, endpoint)
    config = src.load("hf://org/model@v1.0", token="secret")
    assert config["served"] == "/org/model/resolve/v1.0/config.json"
    assert requests == [{"path": "/org/model/resolve/v1.0/config.json", "auth": "Bearer secret"}]
    src.load("hf://org/model@v1.0", token="secret")
    assert len(requests) == 1  # served from memory the second time
    assert src.load("hf://org/model")["served"] == "/org/model/resolve/main/config.json"


def test_hf_errors_say_what_to_do(tmp_path, hub):
    endpoint, _ = hub
    with pytest.raises(ConfigUnavailable, match="gated or private, set a token"):
        source(tmp_path, endpoint).load("hf://org/gated")
    with pytest.raises(ConfigUnavailable, match="no such repo"):
        source(tmp_path, endpoint).load("hf://org/missing")


def test_unreachable_endpoint_is_a_config_unavailable(tmp_path):
    src = source(tmp_path, "http://127.0.0.1:9", timeout_seconds=2)  # port 9: discard, closed
    with pytest.raises(ConfigUnavailable, match="could not reach"):
        src.load("hf://org/model")


def test_hf_cache_snapshot_is_used_offline(tmp_path):
    repo = tmp_path / "hub" / "models--Qwen--Qwen2.5-0.5B"
    write_config(repo / "snapshots" / "abc123", {**CONFIG, "from": "cache"})
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    src = ConfigSource(hf_cache=tmp_path / "hub", offline=True)
    assert src.load("hf://Qwen/Qwen2.5-0.5B")["from"] == "cache"
    assert src.load("hf://Qwen/Qwen2.5-0.5B@abc123")["from"] == "cache"
    with pytest.raises(ConfigUnavailable, match="HF_HUB_OFFLINE"):
        src.load("hf://Qwen/Qwen2.5-0.5B@v2")


def test_hf_cache_location_follows_hf_hub_cache_and_hf_home(tmp_path, monkeypatch):
    write_config(tmp_path / "home" / "hub" / "models--org--m" / "snapshots" / "x")
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "home"))
    assert ConfigSource(offline=True).load("hf://org/m") == CONFIG
    write_config(tmp_path / "elsewhere" / "models--org--m" / "snapshots" / "y", {"k": 1})
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "elsewhere"))
    assert ConfigSource(offline=True).load("hf://org/m") == {"k": 1}


def test_endpoint_comes_from_hf_endpoint(monkeypatch, tmp_path, hub):
    endpoint, _ = hub
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    src = ConfigSource(hf_cache=tmp_path / "hub", offline=False)
    assert src.load("hf://org/model")["served"].startswith("/org/model/")


def test_other_schemes_are_refused(tmp_path):
    with pytest.raises(ConfigUnavailable, match="cannot read s3:// URIs"):
        source(tmp_path).load("s3://bucket/model/")
    with pytest.raises(ConfigUnavailable, match="hf://ORG/NAME"):
        source(tmp_path).load("hf://a/b/c")
