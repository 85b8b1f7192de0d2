"""Fetch a model's config.json from where its URI points, without downloading the model.

- `file:///path` or a bare local path: `path/config.json` (or `path` itself if it is a file);
- `pvc://claim/path`: under the claim's mount root, from `pvc_roots` (the operator or the
  local cluster knows where claims are mounted);
- `hf://org/name[@rev]`: first the local Hugging Face cache (HF_HUB_CACHE, else
  HF_HOME/hub, else ~/.cache/huggingface/hub; the layout huggingface_hub writes,
  models--org--name/snapshots/<commit>/config.json), then, unless HF_HUB_OFFLINE is set,
  GET {HF_ENDPOINT or https://huggingface.co}/org/name/resolve/rev/config.json with an
  optional bearer token.

Everything that goes wrong raises ConfigUnavailable with a reason a user can act on.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlparse

DEFAULT_ENDPOINT = "https://huggingface.co"
MAX_CONFIG_BYTES = 4 * 2**20  # a config.json is a few KiB; refuse anything absurd


class ConfigUnavailable(Exception):
    """config.json could not be read; `reason` says why."""

    def __init__(self, uri: str, reason: str) -> None:
        super().__init__(f"{uri}: {reason}")
        self.uri = uri
        self.reason = reason


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def default_hub_cache(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    if env.get("HF_HUB_CACHE"):
        return Path(env["HF_HUB_CACHE"])
    if env.get("HF_HOME"):
        return Path(env["HF_HOME"]) / "hub"
    return Path.home() / ".cache" / "huggingface" / "hub"


@dataclass
class ConfigSource:
    """Reads config.json for model URIs; keeps what it fetched over HTTP, keyed by URI.

    Make one per process (the operator keeps it on kopf's memo) and reuse it.
    """

    hf_endpoint: str = field(default_factory=lambda: os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT)
    hf_cache: Path = field(default_factory=default_hub_cache)
    offline: bool = field(default_factory=lambda: _truthy(os.environ.get("HF_HUB_OFFLINE")))
    pvc_roots: Mapping[str, Path] = field(default_factory=dict)
    timeout_seconds: float = 10.0
    _cache: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)

    def load(self, uri: str, token: str | None = None) -> dict[str, Any]:
        """The parsed config.json for `uri`; raises ConfigUnavailable."""
        parsed = urlparse(uri)
        if parsed.scheme == "hf":
            return self._hf(uri, token)
        if parsed.scheme == "file":
            return _read_local(uri, Path(unquote(parsed.path)))
        if parsed.scheme == "pvc":
            return self._pvc(uri, parsed.netloc, unquote(parsed.path))
        if parsed.scheme == "":
            return _read_local(uri, Path(uri))
        raise ConfigUnavailable(
            uri,
            f"the planner cannot read {parsed.scheme}:// URIs; "
            "use hf://, pvc://, file:// or pass the config.json explicitly",
        )

    # ------------------------------------------------------------------ pvc://

    def _pvc(self, uri: str, claim: str, path: str) -> dict[str, Any]:
        root = self.pvc_roots.get(claim)
        if root is None:
            raise ConfigUnavailable(uri, f"PersistentVolumeClaim {claim!r} is not mounted here")
        target = (Path(root) / path.lstrip("/")).resolve()
        if not target.is_relative_to(Path(root).resolve()):
            raise ConfigUnavailable(uri, "the path leaves the claim's volume")
        return _read_local(uri, target)

    # ------------------------------------------------------------------ hf://

    def _hf(self, uri: str, token: str | None) -> dict[str, Any]:
        if uri in self._cache:
            return self._cache[uri]
        repo, revision = parse_hf_uri(uri)
        cached = self._from_hub_cache(repo, revision)
        if cached is not None:
            config = _read_local(uri, cached)
        elif self.offline:
            raise ConfigUnavailable(
                uri, f"not in the Hugging Face cache at {self.hf_cache} and HF_HUB_OFFLINE is set"
            )
        else:
            config = self._download(uri, repo, revision, token)
        self._cache[uri] = config
        return config

    def _from_hub_cache(self, repo: str, revision: str) -> Path | None:
        """models--org--name/snapshots/<commit>/config.json, the commit found via refs/<rev>."""
        model_dir = self.hf_cache / ("models--" + repo.replace("/", "--"))
        snapshots = model_dir / "snapshots"
        if not snapshots.is_dir():
            return None
        ref = model_dir / "refs" / revision
        commit = ref.read_text().strip() if ref.is_file() else revision
        candidate = snapshots / commit / "config.json"
        if candidate.is_file():
            return candidate
        if revision == "main" and not (model_dir / "refs").is_dir():
            # A hand-seeded cache may have no refs: take the newest snapshot that has one.
            found = sorted(snapshots.glob("*/config.json"), key=lambda p: p.stat().st_mtime)
            return found[-1] if found else None
        return None

    def _download(self, uri: str, repo: str, revision: str, token: str | None) -> dict[str, Any]:
        url = f"{self.hf_endpoint.rstrip('/')}/{repo}/resolve/{quote(revision, safe='')}/config.json"
        headers = {"User-Agent": "kubetune-planner"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(url, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_seconds) as response:
                body = response.read(MAX_CONFIG_BYTES + 1)
        except urllib.error.HTTPError as exc:
            hint = {
                401: "unauthorised: the repo is gated or private, set a token (spec.model.secretRef)",
                403: "forbidden: the token has no access to this repo",
                404: "no such repo, revision or config.json",
            }.get(exc.code, f"HTTP {exc.code}")
            raise ConfigUnavailable(uri, f"{hint} ({url})") from exc
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ConfigUnavailable(uri, f"could not reach {url}: {reason}") from exc
        if len(body) > MAX_CONFIG_BYTES:
            raise ConfigUnavailable(uri, "config.json is larger than 4 MiB")
        return _parse(uri, body)


def parse_hf_uri(uri: str) -> tuple[str, str]:
    """hf://org/name@rev -> ("org/name", "rev"); the revision defaults to main."""
    rest = uri.removeprefix("hf://")
    repo, _, revision = rest.partition("@")
    repo = repo.strip("/")
    parts = repo.split("/")
    if not (1 <= len(parts) <= 2) or not all(parts):
        raise ConfigUnavailable(uri, "expected hf://ORG/NAME[@REVISION]")
    return repo, revision or "main"


def _read_local(uri: str, path: Path) -> dict[str, Any]:
    target = path / "config.json" if path.is_dir() else path
    try:
        body = target.read_bytes()
    except FileNotFoundError as exc:
        raise ConfigUnavailable(uri, f"{target} does not exist") from exc
    except OSError as exc:
        raise ConfigUnavailable(uri, f"cannot read {target}: {exc.strerror or exc}") from exc
    return _parse(uri, body)


def _parse(uri: str, body: bytes) -> dict[str, Any]:
    try:
        config = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigUnavailable(uri, f"config.json is not valid JSON: {exc}") from exc
    if not isinstance(config, dict):
        raise ConfigUnavailable(uri, "config.json is not a JSON object")
    return config
