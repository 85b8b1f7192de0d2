"""Loopback addresses as pod IPs: 127.0.0.2, 127.0.0.3, ... (127.0.0.1 is the host's).

Linux routes all of 127.0.0.0/8 to the loopback interface, so each pod can bind its own
address and two trainers can both listen on port 8000 or 29500. (macOS routes only
127.0.0.1 unless aliases are added; the executor is meant for Linux.)

An Indexed Job gets one address per completion index, reserved when the Job is first
seen, so the address of index 0 (the rendezvous) is known before any pod starts, and a
retried pod of an index gets the same address as the one it replaces. The headless
Service DNS names of those pods map to the reserved addresses.

An address is handed out only if no process on this machine listens on it (any TCP
port): a trainer left over from an earlier run, or another local cluster's pod, still
serving on 127.0.0.2:8000 would otherwise make the new pod fail to bind, or worse, answer
the operator's progress requests with another job's loss.

Everything here runs on the executor's event loop; it is not thread-safe.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass

import psutil

_FIRST = int(ipaddress.IPv4Address("127.0.0.2"))
_LAST = int(ipaddress.IPv4Address("127.255.255.254"))


@dataclass(frozen=True)
class IndexedJobAddresses:
    namespace: str
    job_name: str
    subdomain: str | None
    ips: tuple[str, ...]

    def host_names(self, from_namespace: str) -> dict[str, str]:
        """DNS names of the Job's pods as seen from a pod in `from_namespace`."""
        if not self.subdomain:
            return {}  # without a Service domain the pods have no DNS names
        names: dict[str, str] = {}
        for index, ip in enumerate(self.ips):
            base = f"{self.job_name}-{index}.{self.subdomain}"
            qualified = f"{base}.{self.namespace}"
            for name in (qualified, f"{qualified}.svc", f"{qualified}.svc.cluster.local"):
                names[name] = ip
            if from_namespace == self.namespace:
                names[base] = ip  # the short form resolves through the pod's search path
        return names


def listening_addresses() -> set[str]:
    """IPv4 addresses some process on this machine listens on (TCP), whoever owns it."""
    return {conn.laddr.ip for conn in psutil.net_connections(kind="tcp4")
            if conn.status == psutil.CONN_LISTEN and conn.laddr}


class AddressBook:
    """Hands out loopback addresses and tracks which are in use by a running process."""

    def __init__(self, in_use: Callable[[], set[str]] = listening_addresses) -> None:
        self._in_use = in_use  # addresses taken outside this book (checked on each hand-out)
        self._reserved: set[int] = set()  # by a Job's index or a running non-indexed pod
        self._jobs: dict[str, IndexedJobAddresses] = {}  # Job uid -> its addresses
        self._busy: dict[str, int] = {}  # address -> processes using it
        self._freed = asyncio.Condition()

    def _take(self) -> str:
        foreign = {int(ipaddress.IPv4Address(ip)) for ip in self._in_use()}
        address = next((a for a in range(_FIRST, _LAST + 1)
                        if a not in self._reserved and a not in foreign), None)
        if address is None:
            raise RuntimeError("no loopback address left for another pod")
        self._reserved.add(address)
        return str(ipaddress.IPv4Address(address))

    def _give_back(self, address: str) -> None:
        self._reserved.discard(int(ipaddress.IPv4Address(address)))

    def reserve_job(self, uid: str, namespace: str, job_name: str, subdomain: str | None,
                    completions: int) -> IndexedJobAddresses:
        """The addresses of an Indexed Job's pods, one per index (stable for the Job's life)."""
        known = self._jobs.get(uid)
        if known is not None and len(known.ips) >= completions:
            return known
        ips = list(known.ips) if known else []
        ips += [self._take() for _ in range(completions - len(ips))]
        self._jobs[uid] = IndexedJobAddresses(namespace, job_name, subdomain, tuple(ips))
        return self._jobs[uid]

    def release_job(self, uid: str) -> None:
        known = self._jobs.pop(uid, None)
        for ip in known.ips if known else ():
            if not self._busy.get(ip):
                self._give_back(ip)

    def job_address(self, uid: str, index: int) -> str | None:
        known = self._jobs.get(uid)
        return known.ips[index] if known and 0 <= index < len(known.ips) else None

    def host_names(self, from_namespace: str) -> dict[str, str]:
        names: dict[str, str] = {}
        for job in self._jobs.values():
            names.update(job.host_names(from_namespace))
        return names

    def allocate(self) -> str:
        """An address of its own for a pod outside any Indexed Job."""
        return self._take()

    async def occupy(self, address: str) -> None:
        """Wait until no other process uses `address` (a replaced pod still shutting down
        would hold its ports), then mark it used."""
        async with self._freed:
            await self._freed.wait_for(lambda: not self._busy.get(address))
            self._busy[address] = 1
            self._reserved.add(int(ipaddress.IPv4Address(address)))

    async def vacate(self, address: str) -> None:
        """The process on `address` ended: the address goes back to the pool unless an
        Indexed Job still reserves it for the next pod of that index."""
        async with self._freed:
            self._busy.pop(address, None)
            if not any(address in job.ips for job in self._jobs.values()):
                self._give_back(address)
            self._freed.notify_all()
