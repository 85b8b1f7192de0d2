"""API errors rendered as Kubernetes `Status` objects.

Clients decide what to do from `reason` and `code` (the `kubernetes` client raises
`ApiException(status=409)`, kopf retries on 409 and ignores 404 on deletion), so every
failure the emulator reports must look exactly like kube-apiserver's.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """A failed API call; `status_body()` is what goes over the wire."""

    def __init__(
        self, code: int, reason: str, message: str, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details or {}
        self.warnings: list[str] = []  # sent as Warning headers with the error

    def status_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            body["details"] = self.details
        return body


def _details(name: str | None, group: str, plural: str) -> dict[str, Any]:
    details: dict[str, Any] = {"kind": plural}
    if name:
        details["name"] = name
    if group:
        details["group"] = group
    return details


def _qualified(group: str, plural: str) -> str:
    return f"{plural}.{group}" if group else plural


def not_found(group: str, plural: str, name: str) -> ApiError:
    return ApiError(
        404, "NotFound", f'{_qualified(group, plural)} "{name}" not found',
        _details(name, group, plural),
    )


def unknown_resource() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource")


def already_exists(group: str, plural: str, name: str) -> ApiError:
    return ApiError(
        409, "AlreadyExists", f'{_qualified(group, plural)} "{name}" already exists',
        _details(name, group, plural),
    )


def conflict(group: str, plural: str, name: str, why: str) -> ApiError:
    return ApiError(
        409, "Conflict",
        f'Operation cannot be fulfilled on {_qualified(group, plural)} "{name}": {why}',
        _details(name, group, plural),
    )


def stale_resource_version(group: str, plural: str, name: str) -> ApiError:
    return conflict(
        group, plural, name,
        "the object has been modified; please apply your changes to the latest version"
        " and try again",
    )


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def invalid(group: str, plural: str, name: str, message: str) -> ApiError:
    return ApiError(
        422, "Invalid", f'{_qualified(group, plural)} "{name}" is invalid: {message}',
        _details(name, group, plural),
    )


def method_not_allowed() -> ApiError:
    return ApiError(
        405, "MethodNotAllowed", "the server does not allow this method on the requested resource"
    )


# What kube-apiserver lists (sorted) when a PATCH's Content-Type is not one it applies.
CUSTOM_RESOURCE_PATCH_TYPES = ("application/apply-patch+yaml", "application/json-patch+json",
                               "application/merge-patch+json")
BUILTIN_PATCH_TYPES = (*CUSTOM_RESOURCE_PATCH_TYPES, "application/strategic-merge-patch+json")


def unsupported_media_type(accepted: tuple[str, ...]) -> ApiError:
    """negotiation.NewUnsupportedMediaTypeError (custom resources take no strategic merge patch)."""
    return ApiError(
        415, "UnsupportedMediaType",
        "the body of the request was in an unknown format - accepted media types include: "
        + ", ".join(accepted),
    )


def expired(message: str) -> ApiError:
    return ApiError(410, "Expired", message)


def not_acceptable(accept: str) -> ApiError:
    return ApiError(
        406, "NotAcceptable",
        f"only the following media types are accepted: application/json (asked for {accept!r})",
    )
