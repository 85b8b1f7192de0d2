"""Pod addresses: a loopback address some other process listens on is not handed out.

On a real cluster the CNI plugin gives each pod an IP no other pod holds; here a trainer
left over from an earlier run (or another local cluster's pod) may still listen on
127.0.0.2:8000, and the new pod must not get that address.
"""

from __future__ import annotations

import pathlib
import socket

from kubetune.local.addresses import AddressBook

from .helpers import JOBS, RestApi, condition, job_manifest, wait_until

BIND_POD_IP = """
import os, socket
server = socket.create_server((os.environ['POD_IP'], 8000))
print('bound', os.environ['POD_IP'], flush=True)
"""
POD_IP_ENV = [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}]


def test_an_address_with_a_listener_is_skipped(api: RestApi, workdir: pathlib.Path) -> None:
    next_free = AddressBook().allocate()  # what the executor would hand out next
    with socket.create_server((next_free, 8000)):  # the leftover process
        api.create(JOBS, job_manifest("binder", BIND_POD_IP, env=POD_IP_ENV))
        job = wait_until(lambda: (condition(api.job("binder"), "Complete")
                                  or condition(api.job("binder"), "Failed")) and api.job("binder"),
                         message="the job to finish")
        [pod] = api.pods_of("binder")
    assert condition(job, "Complete"), pod["status"]
    assert pod["status"]["podIP"] != next_free


def test_the_address_book_skips_listened_on_addresses_when_handing_out() -> None:
    book = AddressBook(in_use=lambda: {"127.0.0.2", "127.0.0.4"})
    assert [book.allocate() for _ in range(3)] == ["127.0.0.3", "127.0.0.5", "127.0.0.6"]
