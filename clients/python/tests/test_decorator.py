"""requires_approval against the real gateway: the function runs only after approval, never otherwise."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any, Dict, List

import pytest

import harness_gateway
from countersign import Client, Denied, Expired, GatewayError, State, Withdrawn, requires_approval


def config(purpose: str, **overrides: Any) -> Dict[str, Any]:
    """The decorator's configuration for the test agent, with a unique statement to find the request by."""
    base: Dict[str, Any] = dict(
        workload=harness_gateway.WORKLOAD, display="pytest agent", purpose=purpose,
        statement=f"pytest {uuid.uuid4()}", system="crm", environment="production",
        data_class="confidential", categories=["pii"], on_behalf_of=[("jo@acme.example", "Jo")],
    )
    base.update(overrides)
    return base


def test_an_allowed_call_runs_the_function_with_its_arguments(client):
    ran: List[Any] = []

    @requires_approval(client, **config("test.allow"))
    def export_contacts(segment: str, limit: int = 10) -> str:
        ran.append((segment, limit))
        return f"exported {limit}"

    assert export_contacts("emea") == "exported 10"
    assert ran == [("emea", 10)]
    assert export_contacts.__name__ == "export_contacts"


def test_a_policy_denial_raises_denied_with_the_reason_and_does_not_run(client):
    ran: List[Any] = []

    @requires_approval(client, **config("test.forbidden"))
    def delete_everything() -> None:
        ran.append(True)

    with pytest.raises(Denied) as denied:
        delete_everything()
    assert (denied.value.by, denied.value.reason, denied.value.policy) == ("policy", "unknown test purpose", "test.default")
    assert "the policy denied" in str(denied.value)
    assert ran == []


def test_an_approved_step_up_runs_after_the_approver_signed_exactly_these_arguments(gateway, client):
    cfg = config("test.high", tool="refund", operation="create", reversible=True, ttl_s=60)
    ran: List[Any] = []
    seen: List[Any] = []

    @requires_approval(client, on_pending=seen.append, **cfg)
    def refund(order: str, amount_cents: int, notes: Dict[str, Any]) -> str:
        ran.append((order, amount_cents, notes))
        return "refunded"

    notes = {"why": "damaged \u2014 \"box\"", "tags": ["a", "b"], "ok": True, "ratio": 0.5, "none": None}
    decided = gateway.approver.decide_in_background(cfg["statement"], "approve", "customer called, checked the photos")
    assert refund("A-1", amount_cents=1250, notes=notes) == "refunded"
    claims = decided.result(timeout=30)
    action = claims["actions"][0]
    assert action == {"tool": "refund", "operation": "create", "reversible": True,
                      "args": {"order": "A-1", "amount_cents": 1250, "notes": notes}}
    assert claims["data"] == {"class": "confidential", "categories": ["pii"]}
    assert claims["identity"]["on_behalf_of"] == [{"sub": "jo@acme.example", "display": "Jo"}]
    assert ran == [("A-1", 1250, notes)]
    assert len(seen) == 1 and seen[0].state is State.PENDING and seen[0].tier == "high"


def test_an_approvers_denial_raises_denied_with_their_reason_and_does_not_run(gateway, client):
    cfg = config("test.medium")
    ran: List[Any] = []

    @requires_approval(client, **cfg)
    def send_mail(to: str) -> None:
        ran.append(to)

    gateway.approver.decide_in_background(cfg["statement"], "deny", "wrong customer \x1b[31m")
    with pytest.raises(Denied) as denied:
        send_mail("x@example.org")
    assert (denied.value.by, denied.value.reason) == ("approver", "wrong customer \x1b[31m")
    assert "an approver denied" in str(denied.value) and "\x1b" not in str(denied.value)
    assert ran == []


def test_nobody_deciding_raises_expired_not_a_denial(client):
    ran: List[Any] = []

    @requires_approval(client, **config("test.medium", ttl_s=5))
    def rotate_keys() -> None:
        ran.append(True)

    started = time.monotonic()
    with pytest.raises(Expired) as expired:
        rotate_keys()
    assert time.monotonic() - started >= 4
    assert not isinstance(expired.value, Denied)
    assert "timed out waiting for approval" in str(expired.value) and "denied" not in str(expired.value).lower()
    assert ran == []


def test_waiting_longer_than_max_wait_withdraws_and_raises_expired(gateway, client):
    ran: List[Any] = []

    @requires_approval(client, max_wait_s=1, **config("test.medium", ttl_s=120))
    def wire_money() -> None:
        ran.append(True)

    with pytest.raises(Expired) as expired:
        wire_money()
    assert client.status(expired.value.request_id).state is State.WITHDRAWN
    assert ran == []


def test_a_request_withdrawn_meanwhile_raises_withdrawn(gateway, client):
    cfg = config("test.medium")
    ran: List[Any] = []

    @requires_approval(client, **cfg)
    def purge() -> None:
        ran.append(True)

    def withdraw_when_pending() -> None:
        request_id, _ = gateway.approver.pending(cfg["statement"])
        client.withdraw(request_id)

    withdrawing = gateway.approver.pool.submit(withdraw_when_pending)
    with pytest.raises(Withdrawn):
        purge()
    withdrawing.result(timeout=10)
    assert ran == []


def test_an_unreachable_gateway_fails_closed(gateway, dead_url):
    ran: List[Any] = []
    with Client(dead_url, token=gateway.token, timeout=2) as down:

        @requires_approval(down, **config("test.allow"))
        def drop_table(name: str) -> None:
            ran.append(name)

        with pytest.raises(GatewayError) as error:
            drop_table("users")
    assert error.value.code == "unreachable"
    assert ran == []


def test_a_gateway_refusal_fails_closed_with_its_message(gateway):
    ran: List[Any] = []
    with Client(gateway.url, token="csa_wrong") as wrong:

        @requires_approval(wrong, **config("test.allow"))
        def drop_table(name: str) -> None:
            ran.append(name)

        with pytest.raises(GatewayError) as error:
            drop_table("users")
    assert (error.value.status, error.value.code) == (401, "unauthorized")
    assert ran == []


def test_arguments_that_are_not_json_are_refused_before_anything_is_sent(client):
    ran: List[Any] = []

    @requires_approval(client, **config("test.allow"))
    def upload(blob: Any) -> None:
        ran.append(blob)

    with pytest.raises(TypeError, match="args.blob: a bytes is not JSON"):
        upload(b"\x00\x01")
    with pytest.raises(TypeError, match="beyond"):
        upload(2**60)
    assert ran == []


def test_bad_configuration_is_refused_at_the_first_call(client):
    @requires_approval(client, **config("test.allow", data_class="secret"))
    def anything() -> None:
        raise AssertionError("must not run")

    with pytest.raises(ValueError, match="data_class must be one of"):
        anything()


def test_methods_and_async_functions_are_gated_too(gateway, client):
    cfg = config("test.medium")

    class Mailer:
        ran: List[str] = []

        @requires_approval(client, **cfg)
        async def send(self, to: str) -> str:
            self.ran.append(to)
            return "sent"

    decided = gateway.approver.decide_in_background(cfg["statement"], "approve", "ok")
    assert asyncio.run(Mailer().send("jo@acme.example")) == "sent"
    assert decided.result(timeout=30)["actions"][0]["args"] == {"to": "jo@acme.example"}
    assert Mailer.ran == ["jo@acme.example"]
