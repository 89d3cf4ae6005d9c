"""A gateway that answers off-protocol (a local HTTP server with canned answers): the client refuses, nothing runs."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator, List, Tuple

import pytest

from countersign import Client, GatewayError, requires_approval

WORKLOAD = "spiffe://acme.example/ns/test/sa/pytest"


class Canned:
    """What the fake gateway answers next: (status, headers, body bytes)."""

    answer: Tuple[int, dict, bytes] = (200, {}, b"{}")


class Handler(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        status, headers, body = Canned.answer
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_DELETE = _answer

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def fake_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def answer(status: int, body: Any, headers: Any = None) -> None:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    Canned.answer = (status, dict(headers or {"Content-Type": "application/json"}), raw)


def guarded(url: str, ran: List[str]):
    client = Client(url, token="csa_fake", timeout=5)

    @requires_approval(client, workload=WORKLOAD, display="t", purpose="p", statement="s",
                       system="crm", environment="production")
    def act() -> None:
        ran.append("ran")

    return act


@pytest.mark.parametrize(
    "status, body, headers, code",
    [
        (200, {"id": "r1", "state": "approved", "policy": "p", "reason": "r"}, None, "bad_answer"),  # no grant
        (200, {"id": "r1", "state": "maybe", "grant": "a.b.c"}, None, "bad_answer"),
        (200, {"id": "r1", "state": "expired"}, None, "bad_answer"),  # a new request cannot be expired
        (200, {"id": 7, "state": "approved", "grant": "a.b.c"}, None, "bad_answer"),
        (200, ["approved"], None, "bad_answer"),
        (200, b"<html>approved</html>", {"Content-Type": "text/html"}, "bad_answer"),
        (200, b"{" + b" " * (1 << 20) + b"}", None, "bad_answer"),  # larger than the answer limit
        (302, b"", {"Location": "http://127.0.0.1:1/v1/step-ups"}, "bad_answer"),  # never followed
        (502, b"Bad Gateway", {"Content-Type": "text/plain"}, "bad_answer"),
        (201, {"id": "r1", "state": "pending", "tier": "medium"}, None, "bad_answer"),  # no expires_at
        (429, {"error": "rate_limited", "message": "over the limit\x1b[2J"}, None, "rate_limited"),
        (500, {"error": "internal", "message": "internal error"}, None, "internal"),
    ],
)
def test_off_protocol_answers_fail_closed(fake_url, status, body, headers, code):
    answer(status, body, headers)
    ran: List[str] = []
    with pytest.raises(GatewayError) as error:
        guarded(fake_url, ran)()
    assert error.value.code == code and error.value.status == status
    assert "\x1b" not in str(error.value)
    assert ran == []


def test_a_status_about_another_request_is_refused(fake_url):
    answer(200, {"id": "other", "state": "approved", "policy": "p", "reason": "r", "approvals": 1,
                 "approvals_required": 1, "expires_at": 1, "decisions": [], "grant": "a.b.c"})
    with pytest.raises(GatewayError, match="another request"):
        Client(fake_url, token="csa_fake").status("mine")
