"""The table of served resources, kept in step with kmock's discovery.

kmock answers `/api`, `/apis` and `/apis/<group>/<version>` from its `resources` array; the
registry writes every resource it learns (built-in or from a CRD) into that array, so
discovery, which kopf and kubectl both rely on, always matches what the emulator serves.
"""

from __future__ import annotations

from collections.abc import Iterable

from kmock import ResourceInfo, ResourcesArray, resource

from kubetune.emulator.resources import ALL_VERBS, ResourceType


class ResourceRegistry:
    """Resource types by (group, version, plural), mirrored into kmock's discovery."""

    def __init__(self, discovery: ResourcesArray) -> None:
        self._discovery = discovery
        self._types: dict[tuple[str, str, str], ResourceType] = {}

    def register(self, resource_type: ResourceType) -> None:
        key = (resource_type.group, resource_type.version, resource_type.plural)
        self._types[key] = resource_type
        self._discovery[self._kmock_resource(resource_type)] = ResourceInfo(
            kind=resource_type.kind,
            namespaced=resource_type.namespaced,
            singular=resource_type.singular or resource_type.kind.lower(),
            verbs=set(ALL_VERBS),
            shortnames=set(resource_type.short_names),
            categories=set(resource_type.categories),
            subresources={"status"} if resource_type.has_status else set(),
        )

    def unregister_plural(self, group: str, plural: str) -> None:
        """Forget every version of a resource (its CRD was deleted)."""
        for key, resource_type in list(self._types.items()):
            if (resource_type.group, resource_type.plural) == (group, plural):
                del self._types[key]
                del self._discovery[self._kmock_resource(resource_type)]

    def replace_plural(self, group: str, plural: str, types: Iterable[ResourceType]) -> None:
        self.unregister_plural(group, plural)
        for resource_type in types:
            self.register(resource_type)

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._types.get((group, version, plural))

    def __iter__(self):
        return iter(list(self._types.values()))

    @staticmethod
    def _kmock_resource(resource_type: ResourceType) -> resource:
        return resource(resource_type.group, resource_type.version, resource_type.plural)
