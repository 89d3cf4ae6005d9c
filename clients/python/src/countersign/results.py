"""The gateway's answers as typed, immutable objects, parsed strictly: anything off-protocol is a GatewayError."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, Mapping, Optional, Tuple, Type, TypeVar

from .errors import GatewayError

T = TypeVar("T")


class State(str, Enum):
    """Where a step-up request stands (``state`` in the gateway's answers)."""

    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    EXPIRED = "expired"
    WITHDRAWN = "withdrawn"

    @property
    def resolved(self) -> bool:
        """Whether the request can no longer change."""
        return self is not State.PENDING


@dataclass(frozen=True)
class Submission:
    """The gateway's first answer to a draft.

    ``state`` is ``approved`` (the policy allowed it; ``grant`` is set), ``denied`` (``reason`` says
    why) or ``pending`` (a human must decide: ``tier``, ``approvals_required`` and ``expires_at`` are
    set; ``binding_code`` is set for critical requests only, and only in this answer — show it to
    the person the agent acts for, who reads it to the approver).
    """

    id: str
    state: State
    policy: Optional[str] = None
    reason: Optional[str] = None
    grant: Optional[str] = None
    expires_at: Optional[int] = None
    tier: Optional[str] = None
    approvals_required: Optional[int] = None
    binding_code: Optional[str] = None


@dataclass(frozen=True)
class Decision:
    """One approver's verdict as the agent sees it: never who decided; the reason of a denial only."""

    verdict: str
    at: int
    reason: Optional[str] = None


@dataclass(frozen=True)
class Status:
    """A request's status (``GET /v1/step-ups/{id}``) as its agent sees it."""

    id: str
    state: State
    policy: str
    reason: str
    tier: Optional[str]
    approvals: int
    approvals_required: int
    expires_at: int
    decisions: Tuple[Decision, ...] = ()
    grant: Optional[str] = None

    @property
    def denial_reason(self) -> Optional[str]:
        """The reason of the first approver's denial, if an approver denied the request."""
        return next((d.reason or "" for d in self.decisions if d.verdict == "deny"), None)


def _field(body: Mapping[str, Any], name: str, kind: Type[T], required: bool = True) -> Any:
    """``body[name]`` checked to be a ``kind`` (bools are not ints); ``None`` when optional and absent."""
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise GatewayError("bad_answer", f"the gateway's answer has no valid {name!r}")
    return value


def _state(body: Mapping[str, Any]) -> State:
    raw = _field(body, "state", str)
    try:
        return State(raw)
    except ValueError:
        raise GatewayError("bad_answer", f"the gateway answered an unknown state {raw!r}") from None


def parse_submission(body: Any) -> Submission:
    """The answer to ``POST /v1/step-ups``."""
    if not isinstance(body, dict):
        raise GatewayError("bad_answer", "the gateway's answer is not a JSON object")
    state = _state(body)
    sub = Submission(
        id=_field(body, "id", str),
        state=state,
        policy=_field(body, "policy", str, required=False),
        reason=_field(body, "reason", str, required=False),
        grant=_field(body, "grant", str, required=state is State.APPROVED),
        expires_at=_field(body, "expires_at", int, required=state is State.PENDING),
        tier=_field(body, "tier", str, required=state is State.PENDING),
        approvals_required=_field(body, "approvals_required", int, required=state is State.PENDING),
        binding_code=_field(body, "binding_code", str, required=False),
    )
    if state not in (State.APPROVED, State.DENIED, State.PENDING):
        raise GatewayError("bad_answer", f"a new request cannot be {state.value}")
    return sub


def parse_status(body: Any) -> Status:
    """The answer to ``GET /v1/step-ups/{id}`` for the agent."""
    if not isinstance(body, dict):
        raise GatewayError("bad_answer", "the gateway's answer is not a JSON object")
    raw_decisions = _field(body, "decisions", list, required=False) or []
    decisions = []
    for d in raw_decisions:
        if not isinstance(d, dict):
            raise GatewayError("bad_answer", "a decision in the gateway's answer is not an object")
        decisions.append(
            Decision(
                verdict=_field(d, "verdict", str),
                at=_field(d, "at", int),
                reason=_field(d, "reason", str, required=False),
            )
        )
    return Status(
        id=_field(body, "id", str),
        state=_state(body),
        policy=_field(body, "policy", str),
        reason=_field(body, "reason", str),
        tier=_field(body, "tier", str, required=False),
        approvals=_field(body, "approvals", int),
        approvals_required=_field(body, "approvals_required", int),
        expires_at=_field(body, "expires_at", int),
        decisions=tuple(decisions),
        grant=_field(body, "grant", str, required=False),
    )
