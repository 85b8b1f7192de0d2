"""The one URI form used for models, datasets and outputs, parsed in one place.

| scheme  | example                                  | parts                         |
| hf://   | hf://Qwen/Qwen2.5-0.5B-Instruct@main     | repo "Qwen/Qwen2.5-0.5B-...", revision "main" |
| s3://   | s3://models/team-a/support-bot/          | bucket "models", path "team-a/support-bot/"   |
| pvc://  | pvc://shared-models/qwen-0.5b            | claim "shared-models", path "qwen-0.5b"       |
| file:// | file:///data/feedback.jsonl              | path "/data/feedback.jsonl"                   |

A `pvc://` URI always names a claim in the job's own namespace: there is no syntax for
another namespace, and a `namespace/claim` form is rejected.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated

from pydantic import AfterValidator, Field

from .kube_syntax import dns_subdomain_problems

SCHEMES = ("hf", "s3", "pvc", "file")
ACCEPTED_FORMS = (
    "hf://ORG/NAME[@REVISION], s3://BUCKET/PREFIX, pvc://CLAIM/PATH or file:///ABSOLUTE/PATH"
)
MAX_URI_LENGTH = 2048

# S3 bucket names, HF repo ids and revisions (claim names: kube_syntax's DNS subdomain).
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")
_HF_REPO_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,95}$")
_HF_REVISION = re.compile(r"^[A-Za-z0-9._\-/]{1,255}$")


@dataclass(frozen=True)
class ParsedUri:
    """A URI split into its parts. `authority` is the HF repo, bucket or claim."""

    scheme: str
    authority: str
    path: str
    revision: str | None = None

    def join(self, *parts: str) -> str:
        """A URI below this one: `s3://b/out/` joined with `adapter` is `s3://b/out/adapter`."""
        base = str(self).rstrip("/")
        return "/".join([base, *(p.strip("/") for p in parts)])

    def __str__(self) -> str:
        if self.scheme == "file":
            return f"file://{self.path}"
        if self.scheme == "hf":
            return f"hf://{self.authority}" + (f"@{self.revision}" if self.revision else "")
        return f"{self.scheme}://{self.authority}/{self.path}".rstrip("/") + (
            "/" if self.path.endswith("/") else ""
        )


class UriError(ValueError):
    """The URI does not have one of the accepted forms."""


def parse_uri(uri: str) -> ParsedUri:
    """Parse a kubetune URI, or raise UriError saying which form is expected."""
    scheme, sep, rest = uri.partition("://")
    if not sep or scheme not in SCHEMES:
        raise UriError(f"must be one of {ACCEPTED_FORMS}, got {uri!r}")
    if len(uri) > MAX_URI_LENGTH:
        raise UriError(f"must be at most {MAX_URI_LENGTH} characters")
    return _PARSERS[scheme](rest)


def _parse_hf(rest: str) -> ParsedUri:
    repo, _, revision = rest.partition("@")
    parts = repo.split("/")
    if len(parts) not in (1, 2) or not all(_HF_REPO_PART.match(p) for p in parts):
        raise UriError(f"must be hf://ORG/NAME[@REVISION] (a Hugging Face repo id), got hf://{rest}")
    if "@" in rest and not _HF_REVISION.match(revision):
        raise UriError("must have a non-empty revision after '@' (a branch, tag or commit)")
    return ParsedUri("hf", repo, "", revision or None)


def _parse_s3(rest: str) -> ParsedUri:
    bucket, _, path = rest.partition("/")
    if not bucket:
        raise UriError("must name a bucket: s3://BUCKET/PREFIX")
    if not _BUCKET.match(bucket):
        raise UriError(f"must name a valid S3 bucket (3-63 of a-z 0-9 . -), got {bucket!r}")
    return ParsedUri("s3", bucket, path)


def _parse_pvc(rest: str) -> ParsedUri:
    claim, _, path = rest.partition("/")
    if not claim or dns_subdomain_problems(claim):
        raise UriError(
            "must be pvc://CLAIM/PATH with CLAIM a PersistentVolumeClaim in the job's "
            f"namespace (lowercase DNS name), got pvc://{rest}"
        )
    if not path.strip("/"):
        raise UriError("must name a path inside the claim: pvc://CLAIM/PATH")
    if ".." in path.split("/"):
        raise UriError("must not contain '..' in the path")
    return ParsedUri("pvc", claim, path)


def _parse_file(rest: str) -> ParsedUri:
    if not rest.startswith("/") or rest == "/":
        raise UriError("must be file:///ABSOLUTE/PATH (three slashes)")
    return ParsedUri("file", "", rest)


_PARSERS = {"hf": _parse_hf, "s3": _parse_s3, "pvc": _parse_pvc, "file": _parse_file}


def _check(uri: str) -> str:
    parse_uri(uri)
    return uri


Uri = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_URI_LENGTH,
        description=f"A location: {ACCEPTED_FORMS}.",
        # The API server checks the scheme; parse_uri checks the rest with a better message.
        json_schema_extra={"pattern": "^(hf|s3|pvc|file)://.+$"},
    ),
    AfterValidator(_check),
]
"""A string field holding a kubetune URI; validated by parse_uri."""
