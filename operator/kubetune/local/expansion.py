"""Pure string work on a container's command, args and env before it runs as a subprocess.

- `expand`: Kubernetes' `$(VAR)` expansion (`$$` escapes, unknown names stay as written).
- `PathMap`: a subprocess cannot see volumes at their absolute `mountPath` (that needs root
  and a mount namespace), so values that start with a mount path are rewritten to the
  local folder backing that volume.
- `rewrite_hosts`: the DNS names of pods behind a headless Service resolve to nothing on
  this machine, so they are rewritten to the pods' loopback addresses.
"""

from __future__ import annotations

import re
from collections.abc import Mapping


def expand(text: str, env: Mapping[str, str]) -> str:
    """Expand `$(NAME)` from `env` as the kubelet does: `$$` is a literal `$`, and a
    reference to an undefined variable is left as written."""
    out: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char != "$" or i + 1 == len(text):
            out.append(char)
            i += 1
            continue
        following = text[i + 1]
        if following == "$":
            out.append("$")
            i += 2
        elif following == "(":
            close = text.find(")", i + 2)
            if close == -1:  # no closing parenthesis: not a reference
                out.append(text[i:])
                break
            name = text[i + 2:close]
            out.append(env[name] if name in env else text[i:close + 1])
            i = close + 1
        else:
            out.append(char)
            i += 1
    return "".join(out)


class PathMap:
    """In-container paths (mount paths, the termination-message file) -> local paths."""

    def __init__(self, mapping: Mapping[str, str] | None = None) -> None:
        # Longest first, so /mnt/pvc/data wins over /mnt/pvc when both are mounted.
        self._mapping = dict(sorted((mapping or {}).items(), key=lambda kv: -len(kv[0])))

    def add(self, container_path: str, local_path: str) -> None:
        self._mapping[container_path.rstrip("/") or "/"] = local_path
        self._mapping = dict(sorted(self._mapping.items(), key=lambda kv: -len(kv[0])))

    def translate(self, value: str) -> str:
        """Rewrite `value` if it is, or starts with, a mapped path (on a `/` boundary)."""
        for container_path, local_path in self._mapping.items():
            if value == container_path:
                return local_path
            if value.startswith(container_path.rstrip("/") + "/"):
                return local_path.rstrip("/") + "/" + value[len(container_path):].lstrip("/")
        return value

    def items(self) -> list[tuple[str, str]]:
        return list(self._mapping.items())


# A host name ends where the characters that may appear in one end.
_HOST_EDGE_BEFORE = r"(?<![A-Za-z0-9.-])"
_HOST_EDGE_AFTER = r"(?![A-Za-z0-9-]|\.[A-Za-z0-9])"


def rewrite_hosts(value: str, hosts: Mapping[str, str]) -> str:
    """Replace every whole host name in `value` that `hosts` knows by its address."""
    if not hosts or "." not in value:
        return value
    names = sorted(hosts, key=len, reverse=True)  # the longest form of a name first
    pattern = re.compile(
        _HOST_EDGE_BEFORE + "(" + "|".join(map(re.escape, names)) + ")" + _HOST_EDGE_AFTER)
    return pattern.sub(lambda match: hosts[match.group(1)], value)
