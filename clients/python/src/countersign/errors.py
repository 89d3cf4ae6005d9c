"""The errors the client raises: the gateway failed, or the action was not approved (denied, expired, withdrawn)."""

from __future__ import annotations

from typing import Optional

#: Longest piece of gateway text put into an error message; the full text stays on the attribute.
_SHOWN_CHARS = 500


def shown(text: object) -> str:
    """A gateway string made safe to print: control characters escaped, length bounded.

    Every string from the gateway is untrusted; it may hold terminal escape sequences or be huge.
    The raw value stays on the error's attributes; only messages go through this.
    """
    s = str(text)
    out = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in s[:_SHOWN_CHARS])
    return out + ("…" if len(s) > _SHOWN_CHARS else "")


class CountersignError(Exception):
    """Base class of every error this package raises on purpose."""


class GatewayError(CountersignError):
    """The gateway could not be reached, refused the call, or answered something unexpected.

    Nothing was approved: callers must fail closed. ``status`` is the HTTP status (``None`` when no
    answer came), ``code`` the gateway's error code (``malformed``, ``unauthorized``, ``forbidden``,
    ``not_found``, ``conflict``, ``expired``, ``too_large``, ``rate_limited``, ``internal``, …) or one
    of this client's own: ``unreachable`` (no HTTP answer) and ``bad_answer`` (not the protocol).
    """

    def __init__(self, code: str, message: str, status: Optional[int] = None) -> None:
        self.code = code
        self.message = message
        self.status = status
        where = f"HTTP {status} " if status is not None else ""
        super().__init__(f"Countersign gateway error: {where}{shown(code)}: {shown(message)}")


class NotApproved(CountersignError):
    """The action was not approved, so it was not run. ``request_id`` names the step-up request."""

    def __init__(self, message: str, request_id: str) -> None:
        self.request_id = request_id
        super().__init__(message)


class Denied(NotApproved):
    """The policy or an approver denied the action.

    ``by`` is ``"policy"`` or ``"approver"``; ``reason`` is the policy's or the approver's reason
    (untrusted text); ``policy`` is the policy rule id when known.
    """

    def __init__(self, request_id: str, by: str, reason: str, policy: Optional[str] = None) -> None:
        self.by = by
        self.reason = reason
        self.policy = policy
        who = "the policy" if by == "policy" else "an approver"
        rule = f", policy {shown(policy)}" if policy else ""
        super().__init__(
            f"Countersign: {who} denied this action: {shown(reason)} (request {shown(request_id)}{rule})",
            request_id,
        )


class Expired(NotApproved):
    """Nobody decided in time: the request expired, or waiting for it took longer than allowed.

    This is not a denial; the action may be asked for again. ``expires_at`` is the request's
    expiry (Unix seconds) when known.
    """

    def __init__(self, request_id: str, expires_at: Optional[int] = None) -> None:
        self.expires_at = expires_at
        super().__init__(
            f"Countersign: timed out waiting for approval (request {shown(request_id)}); the action was not run",
            request_id,
        )


class Withdrawn(NotApproved):
    """The request was withdrawn by its agent before anyone decided."""

    def __init__(self, request_id: str) -> None:
        super().__init__(
            f"Countersign: request {shown(request_id)} was withdrawn before a decision; the action was not run",
            request_id,
        )
