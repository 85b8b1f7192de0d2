"""One storage layer for every location kubetune reads from or writes to.

URIs (parsed by `kubetune.api.uri.parse_uri`, the operator's own parser):

- ``file:///abs/path``   a local path (tests, the local cluster, air-gapped images)
- ``pvc://CLAIM/PATH``  a mounted PersistentVolumeClaim: the directory in env
  ``KUBETUNE_PVC_PATH_<CLAIM>`` if set, else ``/mnt/pvc/<CLAIM>``, joined with PATH
- ``s3://BUCKET/KEY``   S3 or an S3-compatible store, through boto3 (endpoint and keys from the
  usual ``AWS_*`` env vars)
- ``hf://ORG/NAME@REV`` a Hugging Face Hub repo, loaded by transformers itself (HF_TOKEN,
  HF_HOME and HF_HUB_OFFLINE are honoured there)

Reads of remote objects land in a cache keyed by the URI (``KUBETUNE_CACHE_DIR``), so a retried
pod on the same node does not download twice. Writes go to a local directory first; for s3 the
directory is then uploaded (`publish`), for file/pvc it *is* the destination.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from kubetune.api.uri import ParsedUri, UriError, parse_uri

from .errors import InvalidConfig

DEFAULT_PVC_ROOT = "/mnt/pvc"
_COMPLETE_MARKER = ".kubetune-complete"


class NotFound(FileNotFoundError):
    """Nothing exists at the URI."""


def parse(uri: str) -> ParsedUri:
    try:
        return parse_uri(uri)
    except UriError as error:
        raise InvalidConfig(f"bad URI {uri!r}: {error}") from error


def cache_root() -> Path:
    root = os.environ.get("KUBETUNE_CACHE_DIR") or os.path.join(
        tempfile.gettempdir(), "kubetune-cache"
    )
    return Path(root)


def pvc_mount(claim: str) -> Path:
    """Where a claim is mounted; the env override lets the local cluster (and tests) move it."""
    env_name = "KUBETUNE_PVC_PATH_" + re.sub(r"[^A-Za-z0-9]", "_", claim).upper()
    return Path(os.environ.get(env_name) or os.path.join(DEFAULT_PVC_ROOT, claim))


def local_path(uri: str | ParsedUri) -> Path | None:
    """The local filesystem path of a file:// or pvc:// URI; None for remote schemes."""
    parsed = parse(uri) if isinstance(uri, str) else uri
    if parsed.scheme == "file":
        return Path(parsed.path)
    if parsed.scheme == "pvc":
        return pvc_mount(parsed.authority) / parsed.path.strip("/")
    return None


def join(uri: str, *parts: str) -> str:
    return parse(uri).join(*parts)


# ---------------------------------------------------------------------------------------------
# S3


def s3_client():
    import boto3

    # boto3 reads AWS_ENDPOINT_URL itself in recent versions; the S3-specific variable wins.
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    return boto3.client("s3", endpoint_url=endpoint or None)


def _s3_keys(bucket: str, prefix: str) -> list[str]:
    client = s3_client()
    keys: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(item["Key"] for item in page.get("Contents", []))
    return keys


def _s3_download(parsed: ParsedUri, dest: Path) -> Path:
    """Download one object, or every object below a prefix, into dest; return the local path."""
    from botocore.exceptions import ClientError

    client = s3_client()
    key = parsed.path.strip("/")
    try:
        if key and not parsed.path.endswith("/"):
            # One object, if it exists under exactly that key.
            try:
                client.head_object(Bucket=parsed.authority, Key=key)
                target = dest / Path(key).name
                target.parent.mkdir(parents=True, exist_ok=True)
                client.download_file(parsed.authority, key, str(target))
                return target
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey"):
                    raise
        prefix = f"{key}/" if key else ""
        keys = [k for k in _s3_keys(parsed.authority, prefix) if not k.endswith("/")]
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code")
        if code in ("NoSuchBucket", "404", "NoSuchKey"):
            raise NotFound(str(parsed)) from error
        raise
    if not keys:
        raise NotFound(str(parsed))
    for object_key in keys:
        target = dest / object_key[len(prefix):]
        target.parent.mkdir(parents=True, exist_ok=True)
        client.download_file(parsed.authority, object_key, str(target))
    return dest


def _s3_upload_dir(local_dir: Path, parsed: ParsedUri, last: tuple[str, ...] = ()) -> None:
    client = s3_client()
    prefix = parsed.path.strip("/")
    # Files named in `last` go up after all others: a reader that sees them (a checkpoint's
    # state file) can trust that the rest of the folder is complete.
    files = sorted(
        (p for p in local_dir.rglob("*") if p.is_file()), key=lambda p: (p.name in last, str(p))
    )
    for path in files:
        key = "/".join(filter(None, [prefix, path.relative_to(local_dir).as_posix()]))
        client.upload_file(str(path), parsed.authority, key)


def _s3_delete_prefix(parsed: ParsedUri) -> None:
    client = s3_client()
    prefix = parsed.path.strip("/") + "/"
    keys = _s3_keys(parsed.authority, prefix)
    for start in range(0, len(keys), 1000):
        client.delete_objects(
            Bucket=parsed.authority,
            Delete={"Objects": [{"Key": k} for k in keys[start:start + 1000]]},
        )


# ---------------------------------------------------------------------------------------------
# Reading


def fetch(uri: str) -> Path:
    """A local path holding the file or directory at `uri` (downloaded and cached if remote).

    Raises NotFound when nothing is there. hf:// is not fetched here: transformers loads
    model repos itself (see `kubetune_trainer.models`); datasets on the Hub are downloaded
    with huggingface_hub.
    """
    parsed = parse(uri)
    path = local_path(parsed)
    if path is not None:
        if not path.exists():
            raise NotFound(str(path))
        return path
    cached = cache_root() / "downloads" / hashlib.sha256(str(parsed).encode()).hexdigest()[:24]
    marker = cached / _COMPLETE_MARKER
    if marker.exists():
        return Path(marker.read_text())
    # Download into a fresh folder and mark it complete at the end, so that a pod killed
    # mid-download does not leave a half file that the retry would trust.
    shutil.rmtree(cached, ignore_errors=True)
    cached.mkdir(parents=True)
    if parsed.scheme == "s3":
        result = _s3_download(parsed, cached / "data")
    elif parsed.scheme == "hf":
        result = _hf_dataset_download(parsed, cached / "data")
    else:  # pragma: no cover - parse() accepts only the schemes above
        raise InvalidConfig(f"unsupported URI scheme in {uri!r}")
    marker.write_text(str(result))
    return result


def _hf_dataset_download(parsed: ParsedUri, dest: Path) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        return Path(
            snapshot_download(
                parsed.authority,
                repo_type="dataset",
                revision=parsed.revision,
                token=os.environ.get("HF_TOKEN"),
                local_dir=dest,
            )
        )
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError) as error:
        raise NotFound(f"{parsed}: {error}") from error


def content_hash(path: Path) -> str:
    """sha256 of a file, or of all files below a directory in name order."""
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        with file.open("rb") as handle:
            for block in iter(lambda h=handle: h.read(1 << 20), b""):
                digest.update(block)
    return "sha256:" + digest.hexdigest()


# ---------------------------------------------------------------------------------------------
# Writing


@dataclass(frozen=True)
class Destination:
    """A writable location (output.uri): local folders to write into, then `publish`."""

    uri: str

    def __post_init__(self) -> None:
        if parse(self.uri).scheme == "hf":
            raise InvalidConfig(f"output.uri {self.uri!r}: hf:// cannot be written to")

    @property
    def is_remote(self) -> bool:
        return local_path(self.uri) is None

    def uri_of(self, *parts: str) -> str:
        return join(self.uri, *parts) if parts else self.uri

    def local_dir(self, *parts: str) -> Path:
        """A folder to write `parts` into: the destination itself, or an s3 staging folder."""
        base = local_path(self.uri)
        if base is None:
            key = hashlib.sha256(self.uri.encode()).hexdigest()[:24]
            base = cache_root() / "staging" / key
        folder = base.joinpath(*parts)
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def publish(self, *parts: str, last: tuple[str, ...] = ()) -> str:
        """Make what was written into local_dir(*parts) visible at uri_of(*parts)."""
        if self.is_remote:
            _s3_upload_dir(self.local_dir(*parts), parse(self.uri_of(*parts)), last)
        return self.uri_of(*parts)

    def list_dirs(self, *parts: str) -> list[str]:
        """Names of the sub-folders at uri_of(*parts) (empty if it does not exist)."""
        base = local_path(self.uri)
        if base is not None:
            folder = base.joinpath(*parts)
            return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
        parsed = parse(self.uri_of(*parts))
        prefix = parsed.path.strip("/") + "/"
        names = {k[len(prefix):].split("/", 1)[0] for k in _s3_keys(parsed.authority, prefix)}
        return sorted(n for n in names if n and "/" not in n)

    def exists(self, *parts: str) -> bool:
        base = local_path(self.uri)
        if base is not None:
            return base.joinpath(*parts).exists()
        parsed = parse(self.uri_of(*parts))
        return bool(_s3_keys(parsed.authority, parsed.path.strip("/")))

    def read_text(self, *parts: str) -> str | None:
        """The text of one file at uri_of(*parts), or None if there is none."""
        base = local_path(self.uri)
        if base is not None:
            path = base.joinpath(*parts)
            return path.read_text(encoding="utf-8") if path.is_file() else None
        from botocore.exceptions import ClientError

        parsed = parse(self.uri_of(*parts))
        try:
            reply = s3_client().get_object(Bucket=parsed.authority, Key=parsed.path.strip("/"))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
                return None
            raise
        return reply["Body"].read().decode("utf-8")

    def fetch_dir(self, *parts: str) -> Path:
        """A local copy of uri_of(*parts) (the folder itself for file/pvc)."""
        base = local_path(self.uri)
        if base is not None:
            return base.joinpath(*parts)
        folder = self.local_dir(*parts)
        shutil.rmtree(folder)
        folder.mkdir(parents=True)
        parsed = parse(self.uri_of(*parts) + "/")
        return _s3_download(parsed, folder)

    def remove(self, *parts: str) -> None:
        base = local_path(self.uri)
        if base is not None:
            shutil.rmtree(base.joinpath(*parts), ignore_errors=True)
            return
        _s3_delete_prefix(parse(self.uri_of(*parts)))
        shutil.rmtree(self.local_dir(*parts), ignore_errors=True)
