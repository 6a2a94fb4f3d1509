"""A private network for the nodes of a cluster scenario: network partitions between real processes.

Network(n) creates one network namespace per node, each with a veth pair whose other end is on a
private bridge in the harness's own namespace (where the clients run):

    harness, clients ── bridge 10.213.K.254/24 ─┬─ veth ── namespace node 1: 10.213.K.1
                                                ├─ veth ── namespace node 2: 10.213.K.2
                                                └─ veth ── namespace node 3: 10.213.K.3

A node runs inside its namespace (exec_prefix()) and listens on its own address only, so every
byte between two nodes crosses the bridge, where the packet filter can drop it.  A partition is a
set of cut node pairs: for each cut pair, each node's namespace drops (nftables, an input hook)
every packet from the other's address.  Packets from the bridge address, i.e. from the clients and
the harness, are never dropped: the clients keep reaching every node, as in a partition between
racks whose clients sit on both sides.  Drop, not reject: a cut link looks like a dead network
(timeouts), not like a closed port.

Needs root, `ip` (iproute2) and `nft` (nftables); scripts/chaos.sh installs them when missing.
Everything created is named after the harness's pid (`chaos<pid>-n<i>`, `ckb<pid>`, ...) and
removed by close(); create() first removes what earlier runs whose harness is gone left behind.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

SUBNET_PREFIX = "10.213"
BRIDGE_HOST = 254          # the bridge's (harness's) host number in the subnet
NFT_TABLE = "chaos"


class NetworkUnavailable(Exception):
    """The machine cannot make namespaces (not root, or ip / nft missing)."""


def _run(cmd: list[str], check: bool = True) -> subprocess.CompletedProcess | None:
    """Run an ip / nft command; with check=False never raise (None if it timed out)."""
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                           timeout=30)
    except subprocess.TimeoutExpired:
        if check:
            raise
        return None
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {r.returncode}: {r.stderr.strip()}")
    return r


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale() -> None:
    """Remove the namespaces and interfaces of earlier runs whose harness process is gone (a
    SIGKILLed run cannot clean up after itself)."""
    listed = _run(["ip", "netns", "list"], check=False)
    for line in (listed.stdout if listed else "").splitlines():
        m = re.match(r"chaos(\d+)-n\d+\b", line.strip())
        if m and not _pid_alive(int(m.group(1))):
            _run(["ip", "netns", "del", m.group(0)], check=False)
    links = _run(["ip", "-o", "link", "show"], check=False)
    for line in (links.stdout if links else "").splitlines():
        m = re.match(r"\d+: (ckb(\d+)|ck(\d+)v\d+)[@:]", line)
        if m and not _pid_alive(int(m.group(2) or m.group(3))):
            _run(["ip", "link", "del", m.group(1)], check=False)


def available() -> str | None:
    """None if namespaces can be made here, else why not."""
    if os.geteuid() != 0:
        return "network partitions need root (network namespaces, nftables)"
    missing = [t for t in ("ip", "nft") if shutil.which(t) is None]
    if missing:
        return f"network partitions need {' and '.join(missing)} (iproute2, nftables)"
    return None


class Network:
    def __init__(self, nodes: int, tag: int | None = None):
        tag = os.getpid() if tag is None else tag
        self.nodes = nodes
        self.third = tag % 250 + 1                       # 10.213.K.0/24, K from the pid
        self.bridge = f"ckb{tag % 10**7}"                # interface names: at most 15 chars
        self.namespaces = [f"chaos{tag}-n{i}" for i in range(1, nodes + 1)]
        self.veths = [f"ck{tag % 10**7}v{i}" for i in range(1, nodes + 1)]
        self.cuts: set[frozenset[int]] = set()          # cut node pairs (node ids)
        self.created = False

    # -- addresses ---------------------------------------------------------------------------
    def ip(self, node_id: int) -> str:
        return f"{SUBNET_PREFIX}.{self.third}.{node_id}"

    @property
    def host_ip(self) -> str:
        return f"{SUBNET_PREFIX}.{self.third}.{BRIDGE_HOST}"

    def namespace(self, node_id: int) -> str:
        return self.namespaces[node_id - 1]

    def exec_prefix(self, node_id: int) -> list[str]:
        """The command prefix that runs a program in node_id's namespace (same pid: signals work)."""
        return ["ip", "netns", "exec", self.namespace(node_id)]

    # -- life cycle --------------------------------------------------------------------------
    def create(self) -> None:
        why = available()
        if why:
            raise NetworkUnavailable(why)
        sweep_stale()
        self.close()   # leftovers of an earlier run with this pid
        self.created = True
        _run(["ip", "link", "add", self.bridge, "type", "bridge"])
        # Frames bridged here skip the host's iptables (with br_netfilter loaded, a FORWARD
        # policy of DROP, as Docker sets, would otherwise cut every link).
        _run(["ip", "link", "set", self.bridge, "type", "bridge", "nf_call_iptables", "0",
              "nf_call_ip6tables", "0", "nf_call_arptables", "0"], check=False)
        _run(["ip", "addr", "add", f"{self.host_ip}/24", "dev", self.bridge])
        _run(["ip", "link", "set", self.bridge, "up"])
        for i in range(1, self.nodes + 1):
            ns, veth, inner = self.namespace(i), self.veths[i - 1], f"{self.veths[i - 1]}p"
            _run(["ip", "netns", "add", ns])
            _run(["ip", "link", "add", veth, "type", "veth", "peer", "name", inner])
            _run(["ip", "link", "set", inner, "netns", ns])
            _run(["ip", "link", "set", veth, "master", self.bridge, "up"])
            _run(["ip", "-n", ns, "addr", "add", f"{self.ip(i)}/24", "dev", inner])
            _run(["ip", "-n", ns, "link", "set", inner, "up"])
            _run(["ip", "-n", ns, "link", "set", "lo", "up"])
        self._apply()

    def close(self) -> None:
        """Remove every namespace, interface and rule of this network (no error if absent)."""
        for ns in self.namespaces:
            _run(["ip", "netns", "del", ns], check=False)
        for veth in self.veths:
            _run(["ip", "link", "del", veth], check=False)
        _run(["ip", "link", "del", self.bridge], check=False)
        self.cuts.clear()
        self.created = False

    # -- partitions --------------------------------------------------------------------------
    def cut(self, a: int, b: int) -> None:
        self.cuts.add(frozenset((a, b)))
        self._apply()

    def isolate(self, node_id: int) -> None:
        """Cut node_id from every other node (the clients still reach it)."""
        self.cuts |= {frozenset((node_id, o)) for o in range(1, self.nodes + 1) if o != node_id}
        self._apply()

    def set_cuts(self, pairs: set[frozenset[int]]) -> None:
        self.cuts = set(pairs)
        self._apply()

    def heal(self) -> None:
        self.cuts.clear()
        self._apply()

    def blocked_from(self, node_id: int) -> list[int]:
        """The nodes whose packets node_id's namespace drops now."""
        return sorted(o for pair in self.cuts if node_id in pair for o in pair if o != node_id)

    def _apply(self) -> None:
        """Rewrite every namespace's filter table from self.cuts (atomically per namespace)."""
        for i in range(1, self.nodes + 1):
            drop = [self.ip(o) for o in self.blocked_from(i)]
            rule = f"ip saddr {{ {', '.join(drop)} }} drop" if drop else ""
            script = (f"table inet {NFT_TABLE}\n"
                      f"delete table inet {NFT_TABLE}\n"
                      f"table inet {NFT_TABLE} {{\n"
                      f"  chain input {{\n"
                      f"    type filter hook input priority 0; policy accept;\n"
                      f"    {rule}\n"
                      f"  }}\n"
                      f"}}\n")
            r = subprocess.run(["ip", "netns", "exec", self.namespace(i), "nft", "-f", "-"],
                               input=script, capture_output=True, text=True, timeout=30)
            if r.returncode != 0:
                raise RuntimeError(f"nft in {self.namespace(i)}: {r.stderr.strip()}")

    def describe(self) -> str:
        if not self.cuts:
            return "no cut"
        return ", ".join(f"{a}x{b}" for a, b in sorted(tuple(sorted(p)) for p in self.cuts))
