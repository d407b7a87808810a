"""The herd as five hosts: each server in a network namespace of its own, joined by veth links.

Used by ``python -m bench.faults --netns`` to make partitions between
hosts rather than between relays on loopback. The layout, for servers
numbered 0-4 and herd links numbered 0-5 (the CS 131 herd's six)::

    root namespace (the harness: load, table reads)
      |  veth "management" pair per server: 10.231.S.1 (root) - 10.231.S.2 (server)
    namespace of server S (listens on 0.0.0.0)
      |  veth pair per herd link L between A and B: 10.232.L.1 (A) - 10.232.L.2 (B)
    namespace of its neighbour

Each server reaches a neighbour only over their own link (the address at
the far end of the veth pair: a connected route, nothing to forward), and
the harness over its management pair, which no partition touches. Cutting
a herd link sets both ends down (``ip link set ... down``); the kernel then
has no route for it, as between hosts whose cable was pulled. Established
TCP connections survive a cut and retransmit once the link is back up.

Every name starts with a prefix holding the harness's process ID, and
:meth:`Network.remove` deletes every namespace made (the veth pairs go with
them); a run that was killed before it could is cleaned up by the next one
(:func:`remove_stale`).
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

#: Every namespace this module makes is named ``PREFIX-<pid>-<server>``.
PREFIX = "trioherd-faults"


class Unavailable(Exception):
    """Namespaces cannot be made here; the message says why, in one line."""


def _ip(*words: str) -> None:
    result = subprocess.run(["ip", *words], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise OSError(f"ip {' '.join(words)}: {result.stderr.strip()}")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _namespaces() -> list[str]:
    result = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    return [line.split()[0] for line in result.stdout.splitlines() if line.strip()]


def remove_stale() -> list[str]:
    """Delete namespaces left by harnesses that died before removing them; their names."""
    removed = []
    for name in _namespaces():
        parts = name.split("-")
        if not name.startswith(PREFIX + "-") or len(parts) < 4 or not parts[2].isdigit():
            continue
        if not _pid_alive(int(parts[2])):
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
            removed.append(name)
    return removed


# Whether check() passed already in this process.
_checked = False


def check() -> None:
    """Raise :class:`Unavailable` unless this process can make namespaces (tried once)."""
    global _checked
    if _checked:
        return
    if shutil.which("ip") is None:
        raise Unavailable("no `ip` command (iproute2): cannot make network namespaces")
    if os.geteuid() != 0:
        raise Unavailable("not root: cannot make network namespaces")
    probe = f"{PREFIX}-{os.getpid()}-check"
    try:
        _ip("netns", "add", probe)
    except OSError as exc:
        raise Unavailable(f"cannot make a network namespace: {exc}") from None
    subprocess.run(["ip", "netns", "del", probe], capture_output=True, check=False)
    _checked = True


@dataclass(frozen=True)
class HerdLink:
    """The veth pair between servers ``a`` and ``b``."""

    a: str
    b: str
    #: The pair's interface names, at ``a`` and at ``b``.
    device_a: str
    device_b: str
    #: The addresses at ``a`` and at ``b``.
    address_a: str
    address_b: str


class Network:
    """Five namespaces (one per server) and the veth pairs between them.

    Args:
        names: the servers, in order (their numbers in the addresses).
        links: the herd's links, each a pair of server names.
    """

    def __init__(self, names: Sequence[str], links: Iterable[tuple[str, str]]) -> None:
        pid = os.getpid()
        self.names = list(names)
        # Interface names are at most 15 bytes. The management pairs' root
        # ends live in the root namespace, where a pair of a finished run
        # may linger a moment (namespaces are torn down in the background)
        # and process IDs come round again: the process ID and two random
        # bytes, and make() deletes a leftover of the same name first.
        tag = f"t{pid:x}{secrets.token_hex(2)}"
        self.namespace = {name: f"{PREFIX}-{pid}-{name}" for name in self.names}
        #: Where the harness reaches each server, and where it reaches the harness.
        self.server_address = {name: f"10.231.{i}.2" for i, name in enumerate(self.names)}
        self.harness_address = {name: f"10.231.{i}.1" for i, name in enumerate(self.names)}
        self._management = {name: f"{tag}m{i}" for i, name in enumerate(self.names)}
        self.links = [
            HerdLink(a, b, f"{tag}l{k}a", f"{tag}l{k}b", f"10.232.{k}.1", f"10.232.{k}.2")
            for k, (a, b) in enumerate(links)
        ]
        self._made: list[str] = []

    def neighbour_address(self, name: str, peer: str) -> str:
        """The address at which server ``name`` reaches ``peer``: over their own link."""
        for link in self.links:
            if (link.a, link.b) == (name, peer):
                return link.address_b
            if (link.a, link.b) == (peer, name):
                return link.address_a
        raise KeyError((name, peer))

    def make(self) -> None:
        """Make the namespaces and the veth pairs, all up.

        On failure, what was made is removed before the error propagates.
        """
        try:
            for name in self.names:
                namespace = self.namespace[name]
                _ip("netns", "add", namespace)
                self._made.append(namespace)
                _ip("-n", namespace, "link", "set", "lo", "up")
                root_end, server_end = self._management[name], "mgmt"
                subprocess.run(["ip", "link", "del", root_end], capture_output=True, check=False)
                veth = ["link", "add", root_end, "type", "veth", "peer", "name", server_end]
                _ip(*veth, "netns", namespace)
                _ip("addr", "add", f"{self.harness_address[name]}/30", "dev", root_end)
                _ip("link", "set", root_end, "up")
                inside = ["-n", namespace]
                _ip(*inside, "addr", "add", f"{self.server_address[name]}/30", "dev", server_end)
                _ip(*inside, "link", "set", server_end, "up")
            for link in self.links:
                ns_a, ns_b = self.namespace[link.a], self.namespace[link.b]
                veth = ["link", "add", link.device_a, "netns", ns_a, "type", "veth"]
                _ip(*veth, "peer", "name", link.device_b, "netns", ns_b)
                _ip("-n", ns_a, "addr", "add", f"{link.address_a}/30", "dev", link.device_a)
                _ip("-n", ns_b, "addr", "add", f"{link.address_b}/30", "dev", link.device_b)
            for link in self.links:
                self.set_link(link, up=True)
        except BaseException:
            self.remove()
            raise

    def set_link(self, link: HerdLink, *, up: bool) -> None:
        """Bring both ends of a herd link up, or cut it (both ends down)."""
        state = "up" if up else "down"
        _ip("-n", self.namespace[link.a], "link", "set", link.device_a, state)
        _ip("-n", self.namespace[link.b], "link", "set", link.device_b, state)

    def launcher(self, name: str) -> list[str]:
        """The words that run a command in server ``name``'s namespace (it keeps its PID)."""
        return ["ip", "netns", "exec", self.namespace[name]]

    def remove(self) -> None:
        """Delete every namespace made (with its veth pairs); never raises."""
        while self._made:
            namespace = self._made.pop()
            subprocess.run(["ip", "netns", "del", namespace], capture_output=True, check=False)
