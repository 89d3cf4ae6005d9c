"""Blocking until a human approves: ``ensure_approved`` for one draft, and the ``requires_approval`` decorator."""

from __future__ import annotations

import asyncio
import functools
import inspect
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, Optional, Sequence, Tuple, TypeVar, cast

from .client import Client
from .draft import Draft, PrincipalLike, build_draft
from .errors import Denied, Expired, GatewayError, Withdrawn
from .results import State, Status, Submission

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Approval:
    """A request the gateway approved: by its ``policy`` at once, or by ``approvers``.

    ``grant`` is the grant token (a JWT) a target system redeems to learn what was approved.
    """

    request_id: str
    grant: str
    by: str


def _withdraw_quietly(client: Client, request_id: str) -> None:
    """Withdraw a request we stop waiting for; it may have been resolved meanwhile, which is fine."""
    try:
        client.withdraw(request_id)
    except GatewayError:
        pass


def _outcome(client: Client, status: Status) -> Approval:
    if status.state is State.APPROVED:
        if not status.grant:
            raise GatewayError("bad_answer", "the gateway approved the request without a grant")
        return Approval(status.id, status.grant, "approvers")
    if status.state is State.DENIED:
        reason = status.denial_reason or "the request was denied"
        raise Denied(status.id, "approver", reason, status.policy)
    if status.state is State.WITHDRAWN:
        raise Withdrawn(status.id)
    if status.state is State.PENDING:
        _withdraw_quietly(client, status.id)
    raise Expired(status.id, status.expires_at)


def ensure_approved(
    client: Client,
    draft: Draft,
    *,
    idempotency_key: Optional[str] = None,
    max_wait_s: Optional[float] = None,
    on_pending: Optional[Callable[[Submission], None]] = None,
) -> Approval:
    """Submit ``draft`` and block until it is approved; the :class:`Approval`.

    Raises :class:`Denied` (the policy or an approver said no, with the reason), :class:`Expired`
    (nobody decided before the request expired, or within ``max_wait_s`` seconds — the request is
    then withdrawn), :class:`Withdrawn`, or :class:`GatewayError` (no valid answer). When waiting
    is interrupted by any exception the request is withdrawn. ``on_pending`` is called with the
    gateway's first answer when a human must decide (to show its id, expiry or binding code).
    """
    sub = client.submit(draft, idempotency_key=idempotency_key)
    if sub.state is State.APPROVED and sub.grant:
        return Approval(sub.id, sub.grant, "policy")
    if sub.state is State.DENIED:
        raise Denied(sub.id, "policy", sub.reason or "denied by policy", sub.policy)
    if sub.state is not State.PENDING:
        raise GatewayError("bad_answer", "the gateway approved the request without a grant")
    try:
        if on_pending is not None:
            on_pending(sub)
        status = client.wait(sub.id, timeout=max_wait_s)
    except BaseException:
        _withdraw_quietly(client, sub.id)
        raise
    return _outcome(client, status)


def requires_approval(
    client: Client,
    *,
    workload: str,
    display: str,
    purpose: str,
    statement: str,
    system: str,
    environment: str,
    tool: Optional[str] = None,
    data_class: str = "internal",
    categories: Iterable[str] = (),
    reversible: bool = False,
    operation: Optional[str] = None,
    on_behalf_of: Sequence[PrincipalLike] = (),
    ttl_s: Optional[int] = None,
    max_wait_s: Optional[float] = None,
    on_pending: Optional[Callable[[Submission], None]] = None,
    exclude: Tuple[str, ...] = ("self", "cls"),
) -> Callable[[F], F]:
    """Decorate a function so that every call needs the gateway's approval first.

    Each call builds a draft from this configuration (see :func:`build_draft`) with one action:
    ``tool`` (default: the function's name) and, as its ``args``, the call's arguments by parameter
    name with defaults filled in (parameters named in ``exclude`` left out). The arguments must be
    plain JSON values, else ``TypeError`` before anything is sent. The call then blocks until
    approved (see :func:`ensure_approved`) and only then runs the function; on :class:`Denied`,
    :class:`Expired`, :class:`Withdrawn` or :class:`GatewayError` the function is not run and the
    error propagates. ``async def`` functions are supported: the wait runs in a worker thread.
    """
    categories = tuple(categories)

    def decorate(fn: F) -> F:
        signature = inspect.signature(fn)
        name = tool or fn.__name__

        def gate(args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> None:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            call_args = {k: v for k, v in bound.arguments.items() if k not in exclude}
            draft = build_draft(
                workload=workload,
                display=display,
                purpose=purpose,
                statement=statement,
                system=system,
                environment=environment,
                tool=name,
                args=call_args,
                data_class=data_class,
                categories=categories,
                reversible=reversible,
                operation=operation,
                on_behalf_of=on_behalf_of,
                ttl_s=ttl_s,
            )
            ensure_approved(client, draft, max_wait_s=max_wait_s, on_pending=on_pending)

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                await asyncio.to_thread(gate, args, kwargs)
                return await fn(*args, **kwargs)

            return cast(F, run_async)

        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            gate(args, kwargs)
            return fn(*args, **kwargs)

        return cast(F, run)

    return decorate
