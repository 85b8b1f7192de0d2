"""The storage layer: file, pvc (from env) and s3 (moto server), with a download cache."""

from __future__ import annotations

import pytest
from kubetune_trainer import storage


@pytest.fixture(scope="module")
def s3_server():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3(s3_server, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    client = storage.s3_client()
    client.create_bucket(Bucket="kt-data")
    yield client
    for item in client.list_objects_v2(Bucket="kt-data").get("Contents", []):
        client.delete_object(Bucket="kt-data", Key=item["Key"])
    client.delete_bucket(Bucket="kt-data")


def test_pvc_uri_resolves_to_the_env_override(tmp_path, monkeypatch):
    monkeypatch.setenv("KUBETUNE_PVC_PATH_SHARED_MODELS", str(tmp_path))
    (tmp_path / "qwen").mkdir()
    assert storage.fetch("pvc://shared-models/qwen") == tmp_path / "qwen"
    monkeypatch.delenv("KUBETUNE_PVC_PATH_SHARED_MODELS")
    assert storage.local_path("pvc://shared-models/qwen") == storage.Path("/mnt/pvc/shared-models/qwen")


def test_missing_file_is_not_found(tmp_path):
    with pytest.raises(storage.NotFound):
        storage.fetch(f"file://{tmp_path}/missing.jsonl")


def test_s3_object_and_prefix_are_downloaded_once(s3, tmp_path):
    s3.put_object(Bucket="kt-data", Key="sets/train.jsonl", Body=b'{"text": "a"}\n')
    s3.put_object(Bucket="kt-data", Key="models/m/config.json", Body=b"{}")
    s3.put_object(Bucket="kt-data", Key="models/m/sub/w.bin", Body=b"123")
    first = storage.fetch("s3://kt-data/sets/train.jsonl")
    assert first.read_text() == '{"text": "a"}\n'
    s3.put_object(Bucket="kt-data", Key="sets/train.jsonl", Body=b"changed")
    assert storage.fetch("s3://kt-data/sets/train.jsonl").read_text() == '{"text": "a"}\n'
    folder = storage.fetch("s3://kt-data/models/m")
    assert (folder / "config.json").read_text() == "{}"
    assert (folder / "sub" / "w.bin").read_bytes() == b"123"
    with pytest.raises(storage.NotFound):
        storage.fetch("s3://kt-data/nothing/here")


def test_s3_destination_publishes_lists_and_removes(s3):
    dest = storage.Destination("s3://kt-data/out/job/")
    for step in (1, 2):
        folder = dest.local_dir("checkpoints", f"checkpoint-{step}")
        (folder / "weights").write_text(str(step))
        (folder / "state.json").write_text("{}")
        dest.publish("checkpoints", f"checkpoint-{step}", last=("state.json",))
    assert dest.list_dirs("checkpoints") == ["checkpoint-1", "checkpoint-2"]
    assert dest.exists("checkpoints", "checkpoint-2", "state.json")
    dest.remove("checkpoints", "checkpoint-1")
    assert dest.list_dirs("checkpoints") == ["checkpoint-2"]
    copy = dest.fetch_dir("checkpoints", "checkpoint-2")
    assert (copy / "weights").read_text() == "2"
    assert dest.uri_of("adapter") == "s3://kt-data/out/job/adapter"
