"""pytest fixtures for the chronik black-box suite.

Every test gets a fresh temporary data dir and freshly picked free ports.
Servers are always killed at teardown, and when a test fails the tail of
each server's log is attached to the failure report.
"""

from __future__ import annotations

import itertools
import sys
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import Server, require_server_binary  # noqa: E402

_server_ids = itertools.count()


@pytest.fixture(scope="session")
def server_bin() -> Path:
    return require_server_binary()


@pytest.fixture
def server_factory(request, tmp_path, server_bin):
    """Create (not start) Server objects in this test's tmp dir.

    Usage: srv = server_factory(extra_args=[...]); srv.start()
    """
    servers: list[Server] = []
    request.node._chronik_servers = servers

    def make(**kwargs) -> Server:
        n = next(_server_ids)
        name = kwargs.pop("name", f"chronik{n}")
        workdir = kwargs.pop("workdir", tmp_path / name)
        srv = Server(workdir, name=name, **kwargs)
        servers.append(srv)
        return srv

    yield make
    for srv in servers:
        srv.close()


@pytest.fixture
def member_factory(request, tmp_path):
    """Start consumer-group member processes (groups.MemberProc); all are killed at teardown.

    Usage: m = member_factory("ck", bootstrap, topic, group, "name", {conf})
    """
    from groups import MemberProc

    members: list = []
    request.node._chronik_members = members

    def make(client: str, bootstrap: str, topic: str, group: str, name: str,
             conf: dict | None = None):
        m = MemberProc(client, bootstrap, topic, group, tmp_path / "members", name, conf)
        members.append(m)
        return m

    yield make
    for m in members:
        m.close()


@pytest.fixture
def server(server_factory) -> Server:
    """A started, ready chronik-server with default broker settings."""
    return server_factory().start()


@pytest.fixture
def topic_name(request) -> str:
    """A unique, valid topic name for this test."""
    base = "".join(c if c.isalnum() else "-" for c in request.node.name)[:60]
    return f"t-{base}-{uuid.uuid4().hex[:8]}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed:
        for srv in getattr(item, "_chronik_servers", []):
            report.sections.append(
                (f"{srv.name} log tail ({srv.log_path})", srv.log_tail(120) or "<empty log>")
            )
        for m in getattr(item, "_chronik_members", []):
            report.sections.append(
                (f"group member {m.name} ({m.events_path})",
                 m.summary() + "\n--- stderr ---\n" + (m.stderr_tail() or "<empty>"))
            )
    return report
