"""Test hosts as Linux network namespaces on a private bridge: real addresses, real links.

    with TestNet.create(["store", "w1", "w2"]) as net:
        net.host("w1").prefix()        # argv prefix: run a command on host w1, hostname w1-<tag>
        net.cut(net.host("w1"))        # a partition: frames to and from w1 are dropped silently
        net.restore(net.host("w1"))

The root namespace holds the bridge and its address (`net.gateway`): services the hosts share
(Postgres, Redis, the ILS emulator, the Airflow control plane) bind there. Every name carries a
random tag, so parallel test runs on one machine never clash, and everything is removed on exit.
Needs root, `ip`, `bridge` and `unshare`; `require_netns()` skips the test naming what is missing.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

TOOLS = ("ip", "bridge", "unshare")
# RFC 2544's benchmarking range: never routed, so a test subnet cannot shadow a real network.
TEST_RANGE = ipaddress.IPv4Network("198.18.0.0/15")
NETNS_ETC = Path("/etc/netns")  # `ip netns exec` bind-mounts /etc/netns/<ns>/hosts on /etc/hosts


class NetnsUnavailable(RuntimeError):
    """This machine cannot make test hosts; the message says why."""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True, timeout=30)


def require_netns() -> None:
    """Skip the calling test unless namespaces, veths and a bridge can be made here."""
    if os.geteuid() != 0:
        pytest.skip("distributed tests make network namespaces: they need root")
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"distributed tests need {', '.join(missing)} on PATH (iproute2, util-linux)")


@dataclass(frozen=True)
class Host:
    """One test host: its namespace, address on the bridge, and the bridge port it hangs on."""

    name: str
    netns: str
    address: str
    hostname: str
    port: str  # the veth end on the root namespace's bridge

    def prefix(self) -> list[str]:
        """Run argv on this host: its namespace and a UTS namespace of its own (hostname)."""
        # `sh -c script arg0 args...`: $0 is the hostname, "$@" the command that follows.
        return ["ip", "netns", "exec", self.netns, "unshare", "--uts",
                "sh", "-c", 'hostname "$0" && exec "$@"', self.hostname]  # fmt: skip

    def run(self, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.prefix(), *argv], check=True, capture_output=True, text=True, timeout=timeout
        )

    def pids(self) -> list[int]:
        """Every process living in this host's network namespace."""
        out = _ip("netns", "pids", self.netns, check=False).stdout
        return [int(pid) for pid in out.split()]

    def kill_all(self, timeout: float = 15.0) -> list[int]:
        """SIGKILL everything on the host, as when it loses power; returns once all are gone.

        Repeated: a process forked while the first round ran, or one still being torn down
        (listed until its exit completes), is caught by the next round.
        """
        killed: list[int] = []
        deadline = time.monotonic() + timeout
        while (pids := self.pids()) and time.monotonic() < deadline:
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
            time.sleep(0.2)
        return killed


@dataclass
class TestNet:
    """A bridge on the root namespace and one namespace per host, joined by a veth pair each."""

    tag: str
    bridge: str
    network: ipaddress.IPv4Network
    hosts: dict[str, Host] = field(default_factory=dict)

    __test__ = False  # not a pytest test class despite its name

    @property
    def gateway(self) -> str:
        """The root namespace's address on the bridge, where shared services listen."""
        return str(self.network.network_address + 1)

    def host(self, name: str) -> Host:
        return self.hosts[name]

    @classmethod
    @contextlib.contextmanager
    def create(cls, names: Sequence[str]) -> Iterator[TestNet]:
        """Make the bridge and hosts (skipping the test when that fails); tear all down on exit."""
        require_netns()
        tag = secrets.token_hex(3)
        net = cls(tag, f"csb{tag}", _free_subnet())
        try:
            try:
                net._make_bridge()
                for index, name in enumerate(names):
                    net._add_host(index, name)
                net._write_hosts_files()
            except subprocess.CalledProcessError as exc:
                pytest.skip(f"cannot make test hosts: `{' '.join(exc.cmd)}`: {exc.stderr.strip()}")
            yield net
        finally:
            net.teardown()

    def _make_bridge(self) -> None:
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{self.gateway}/{self.network.prefixlen}", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")

    def _add_host(self, index: int, name: str) -> None:
        netns = f"cs-{self.tag}-{name}"
        port, peer = f"csv{self.tag}{index}", f"csp{self.tag}{index}"
        address = str(self.network.network_address + 2 + index)
        _ip("netns", "add", netns)
        # Recorded before the veth exists, so teardown removes a half-made host too.
        self.hosts[name] = Host(name, netns, address, f"{name}-{self.tag}", port)
        _ip("link", "add", port, "type", "veth", "peer", "name", peer)
        _ip("link", "set", peer, "netns", netns)
        _ip("link", "set", port, "master", self.bridge)
        _ip("link", "set", port, "up")
        inside = ("ip", "netns", "exec", netns, "ip")
        for args in (("link", "set", peer, "name", "eth0"),
                     ("addr", "add", f"{address}/{self.network.prefixlen}", "dev", "eth0"),
                     ("link", "set", "eth0", "up"), ("link", "set", "lo", "up")):  # fmt: skip
            subprocess.run([*inside, *args], check=True, capture_output=True, text=True)

    def _write_hosts_files(self) -> None:
        """Each host resolves every test host's name (getfqdn answers at once, no DNS)."""
        lines = ["127.0.0.1 localhost"] + [f"{h.address} {h.hostname}" for h in self.hosts.values()]
        for host in self.hosts.values():
            folder = NETNS_ETC / host.netns
            with contextlib.suppress(OSError):  # a read-only /etc: names then resolve slower
                folder.mkdir(parents=True, exist_ok=True)
                (folder / "hosts").write_text("\n".join(lines) + "\n")

    def cut(self, host: Host) -> None:
        """A partition: the host's bridge port drops every frame; both links stay up, so
        nothing on either side is told (no carrier loss, no ICMP), exactly as a dead switch."""
        subprocess.run(["bridge", "link", "set", "dev", host.port, "state", "0"], check=True)

    def restore(self, host: Host) -> None:
        subprocess.run(["bridge", "link", "set", "dev", host.port, "state", "3"], check=True)

    def teardown(self) -> None:
        for host in self.hosts.values():
            host.kill_all()
            # Deleting the namespace destroys its veth end, and with it the pair.
            _ip("netns", "del", host.netns, check=False)
            shutil.rmtree(NETNS_ETC / host.netns, ignore_errors=True)
        _ip("link", "del", self.bridge, check=False)


def _free_subnet() -> ipaddress.IPv4Network:
    """A /24 of the test range that no interface on this machine uses (parallel runs differ)."""
    used = _ip("-4", "-o", "addr", "show").stdout
    subnets: list[ipaddress.IPv4Network] = list(TEST_RANGE.subnets(new_prefix=24))
    for _ in range(64):
        candidate = subnets[secrets.randbelow(len(subnets))]
        if f" {'.'.join(str(candidate.network_address).split('.')[:3])}." not in used:
            return candidate
    raise NetnsUnavailable("no free /24 left in 198.18.0.0/15 for a test network")


def check_hostname(host: Host) -> str:
    """What Airflow's task process will record as TaskInstance.hostname on this host."""
    out = host.run(sys.executable, "-c", "import socket; print(socket.getfqdn())").stdout.strip()
    if out != host.hostname:
        raise NetnsUnavailable(f"host {host.name} reports hostname {out!r}, not {host.hostname!r}")
    return out
