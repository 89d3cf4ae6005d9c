"""Client.submit / status / wait / withdraw against the real gateway: every answer, refusal and failure."""

from __future__ import annotations

import os
import time

import pytest

from countersign import Client, GatewayError, State


def test_allowed_draft_is_approved_at_once_with_a_grant(gateway, client):
    sub = client.submit(gateway.draft("test.allow"))
    assert sub.state is State.APPROVED
    assert sub.policy == "test.allow" and sub.reason == "allowed by the test policy"
    assert sub.grant and sub.grant.count(".") == 2  # a compact JWS
    assert sub.tier is None and sub.binding_code is None


def test_policy_denial_carries_the_policy_reason(gateway, client):
    sub = client.submit(gateway.draft("test.anything-else"))
    assert sub.state is State.DENIED
    assert (sub.policy, sub.reason) == ("test.default", "unknown test purpose")
    assert sub.grant is None


def test_step_up_is_pending_with_tier_expiry_and_approvers_needed(gateway, client):
    before = int(time.time())
    sub = client.submit(gateway.draft("test.medium", ttl_s=120))
    assert sub.state is State.PENDING
    assert (sub.tier, sub.approvals_required, sub.binding_code) == ("medium", 1, None)
    assert before + 115 <= sub.expires_at <= int(time.time()) + 121
    critical = client.submit(gateway.draft("test.critical"))
    assert (critical.tier, critical.approvals_required) == ("critical", 2)
    assert critical.binding_code is not None and critical.binding_code.isdigit() and len(critical.binding_code) == 6


def test_wait_returns_once_an_approver_approves(gateway, client):
    draft = gateway.draft("test.medium", args={"limit": 3, "note": "naïve \u202e\"quoted\""})
    decided = gateway.approver.decide_in_background(draft["purpose"]["statement"], "approve", "looks fine")
    sub = client.submit(draft)
    status = client.wait(sub.id, timeout=30)
    assert decided.result(timeout=30)["actions"][0]["args"] == draft["actions"][0]["args"]
    assert status.state is State.APPROVED and status.id == sub.id
    assert status.approvals == 1 and status.grant
    assert [d.verdict for d in status.decisions] == ["approve"]


def test_wait_reports_an_approvers_denial_reason(gateway, client):
    draft = gateway.draft("test.medium")
    gateway.approver.decide_in_background(draft["purpose"]["statement"], "deny", "not during the freeze")
    status = client.wait(client.submit(draft).id, timeout=30)
    assert status.state is State.DENIED
    assert status.denial_reason == "not during the freeze"
    assert status.grant is None


def test_wait_with_a_short_timeout_returns_the_pending_status(gateway, client):
    sub = client.submit(gateway.draft("test.medium"))
    started = time.monotonic()
    status = client.wait(sub.id, timeout=1)
    assert 0.9 <= time.monotonic() - started < 5
    assert status.state is State.PENDING and status.approvals == 0


def test_a_request_nobody_decides_expires(gateway, client):
    sub = client.submit(gateway.draft("test.medium", ttl_s=5))
    status = client.wait(sub.id)
    assert status.state is State.EXPIRED
    assert time.time() >= sub.expires_at


def test_withdraw_shows_the_request_withdrawn_at_the_gateway(gateway, client):
    sub = client.submit(gateway.draft("test.medium"))
    client.withdraw(sub.id)
    assert client.status(sub.id).state is State.WITHDRAWN
    assert sub.id in gateway.approver.ids_in_state("withdrawn")
    assert sub.id not in gateway.approver.ids_in_state("pending")
    with pytest.raises(GatewayError) as again:
        client.withdraw(sub.id)
    assert (again.value.status, again.value.code) == (409, "conflict")
    assert again.value.message == "request is already withdrawn"


def test_an_idempotency_key_returns_the_first_answer(gateway, client):
    first = client.submit(gateway.draft("test.medium"), idempotency_key="thread-7:call-1")
    retry = client.submit(gateway.draft("test.medium"), idempotency_key="thread-7:call-1")
    other = client.submit(gateway.draft("test.medium"), idempotency_key="thread-7:call-2")
    assert retry == first
    assert other.id != first.id


def test_a_malformed_draft_gets_the_gateways_message(gateway, client):
    draft = gateway.draft("test.allow")
    del draft["actions"]
    with pytest.raises(GatewayError) as missing:
        client.submit(draft)
    assert (missing.value.status, missing.value.code) == (400, "malformed")
    assert "not a step-up draft" in missing.value.message and "actions" in missing.value.message

    draft = gateway.draft("test.allow")
    draft["identity"]["workload"] = "acme-agent"
    with pytest.raises(GatewayError) as shape:
        client.submit(draft)
    assert (shape.value.status, shape.value.message) == (400, "identity.workload must be a spiffe:// id")


def test_another_workloads_draft_is_forbidden(gateway, client):
    draft = gateway.draft("test.allow")
    draft["identity"]["workload"] = "spiffe://acme.example/ns/test/sa/someone-else"
    with pytest.raises(GatewayError) as refused:
        client.submit(draft)
    assert (refused.value.status, refused.value.code) == (403, "forbidden")
    assert "may not submit requests for spiffe://acme.example/ns/test/sa/someone-else" in refused.value.message


def test_a_wrong_token_is_unauthorized(gateway):
    with Client(gateway.url, token="csa_not-a-real-token") as wrong:
        with pytest.raises(GatewayError) as refused:
            wrong.submit(gateway.draft("test.allow"))
    assert (refused.value.status, refused.value.code) == (401, "unauthorized")
    assert refused.value.message


def test_an_unknown_request_is_not_found(client):
    with pytest.raises(GatewayError) as missing:
        client.status("../../v1/step-ups?state=pending")
    assert (missing.value.status, missing.value.code) == (404, "not_found")


def test_an_unreachable_gateway_is_a_gateway_error(gateway, dead_url):
    with Client(dead_url, token=gateway.token, timeout=2) as c:
        with pytest.raises(GatewayError) as down:
            c.submit(gateway.draft("test.allow"))
    assert down.value.code == "unreachable" and down.value.status is None


def test_the_token_comes_from_the_environment_or_a_private_file(gateway, tmp_path, monkeypatch):
    monkeypatch.setenv("COUNTERSIGN_AGENT_TOKEN", gateway.token)
    assert Client(gateway.url).submit(gateway.draft("test.allow")).state is State.APPROVED
    monkeypatch.delenv("COUNTERSIGN_AGENT_TOKEN")
    token_file = tmp_path / "agent.token"
    token_file.write_text(gateway.token + "\n")
    os.chmod(token_file, 0o600)
    assert Client(gateway.url, token_file=token_file).submit(gateway.draft("test.allow")).state is State.APPROVED
    os.chmod(token_file, 0o644)
    with pytest.raises(ValueError, match="accessible by group or others"):
        Client(gateway.url, token_file=token_file)
    with pytest.raises(ValueError, match="no agent token"):
        Client(gateway.url)


def test_bad_client_configuration_is_refused_before_any_call(gateway):
    with pytest.raises(ValueError, match="starts with 'csa_'"):
        Client(gateway.url, token="csa_ok\r\nX-Injected: 1")
    with pytest.raises(ValueError, match="only allowed to a loopback"):
        Client("http://gateway.example:8787", token=gateway.token)
    with pytest.raises(ValueError, match="http"):
        Client("file:///etc/passwd", token=gateway.token)
    with Client(gateway.url, token=gateway.token) as c:
        with pytest.raises(ValueError, match="idempotency_key"):
            c.submit(gateway.draft("test.allow"), idempotency_key="a\nb")
        draft = gateway.draft("test.allow", args={"x": float("nan")})
        with pytest.raises(ValueError):
            c.submit(draft)


def test_a_draft_over_the_body_limit_is_too_large(gateway, client):
    draft = gateway.draft("test.allow", args={f"k{i}": "x" * 16000 for i in range(20)})
    with pytest.raises(GatewayError) as refused:
        client.submit(draft)
    assert (refused.value.status, refused.value.code) == (413, "too_large")
    assert "larger than 262144 bytes" in refused.value.message
