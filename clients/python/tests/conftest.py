"""pytest fixtures: one real gateway per test module, and a client holding its agent token."""

from __future__ import annotations

import socket
from typing import Iterator

import pytest

import harness_gateway
from countersign import Client


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[harness_gateway.RunningGateway]:
    gw = harness_gateway.start(tmp_path_factory.mktemp("gateway"))
    yield gw
    gw.stop()


@pytest.fixture
def client(gateway: harness_gateway.RunningGateway) -> Iterator[Client]:
    with Client(gateway.url, token=gateway.token, timeout=10) as c:
        yield c


@pytest.fixture
def dead_url() -> str:
    """A loopback URL where nothing listens (a port just freed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"
