"""Building a step-up draft (the body of ``POST /v1/step-ups``) from plain values, checked before it is sent."""

from __future__ import annotations

import json
from typing import Any, Dict, Iterable, Mapping, Optional, Sequence, Tuple, Union

#: The data classes the gateway knows, least to most sensitive.
DATA_CLASSES = ("public", "internal", "confidential", "restricted")

#: A principal the agent acts for: ``{"sub": …, "display": …}`` or a ``(sub, display)`` pair.
PrincipalLike = Union[Mapping[str, str], Tuple[str, str]]

Draft = Dict[str, Any]


def _principal(p: PrincipalLike) -> Dict[str, str]:
    if isinstance(p, Mapping):
        sub, display = p.get("sub"), p.get("display", p.get("sub"))
    else:
        sub, display = p
    if not isinstance(sub, str) or not isinstance(display, str):
        raise TypeError("a principal needs a string 'sub' and 'display'")
    return {"sub": sub, "display": display}


def json_args(args: Mapping[str, Any]) -> Dict[str, Any]:
    """``args`` as the JSON object the gateway will sign, or ``TypeError`` if it is not plain JSON.

    Only dicts with string keys, lists, strings, bools, ``None``, finite floats and integers within
    ±2**53 pass (the gateway refuses larger numbers, NaN and infinities as not I-JSON).
    """

    def check(v: Any, where: str) -> None:
        if isinstance(v, bool) or v is None or isinstance(v, str):
            return
        if isinstance(v, int):
            if abs(v) > 2**53:
                raise TypeError(f"{where}: integer {v} is beyond ±2**53, which JSON cannot carry exactly")
            return
        if isinstance(v, float):
            if v != v or v in (float("inf"), float("-inf")):
                raise TypeError(f"{where}: NaN and infinity are not JSON")
            return
        if isinstance(v, (list, tuple)):
            for i, x in enumerate(v):
                check(x, f"{where}[{i}]")
            return
        if isinstance(v, Mapping):
            for k, x in v.items():
                if not isinstance(k, str):
                    raise TypeError(f"{where}: key {k!r} is not a string")
                check(x, f"{where}.{k}")
            return
        raise TypeError(f"{where}: a {type(v).__name__} is not JSON (pass plain values)")

    check(args, "args")
    out: Dict[str, Any] = json.loads(json.dumps(dict(args), allow_nan=False))
    return out


def build_draft(
    *,
    workload: str,
    display: str,
    purpose: str,
    statement: str,
    system: str,
    environment: str,
    tool: str,
    args: Optional[Mapping[str, Any]] = None,
    data_class: str = "internal",
    categories: Iterable[str] = (),
    reversible: bool = False,
    operation: Optional[str] = None,
    on_behalf_of: Sequence[PrincipalLike] = (),
    ttl_s: Optional[int] = None,
) -> Draft:
    """A step-up draft for one action.

    ``workload`` is the agent's SPIFFE id (it must be the one its token was issued for);
    ``purpose`` the purpose code the policy judges by, ``statement`` the agent's own words;
    ``system``/``environment`` the target; ``tool``/``args``/``operation``/``reversible`` the action;
    ``data_class`` one of :data:`DATA_CLASSES` with ``categories`` such as ``"pii"``; ``ttl_s`` the
    requested lifetime (the gateway clamps it, to at least 5 s). Raises ``ValueError`` or
    ``TypeError`` for values the gateway would refuse anyway; the gateway checks sizes itself.
    """
    if data_class not in DATA_CLASSES:
        raise ValueError(f"data_class must be one of {', '.join(DATA_CLASSES)}, not {data_class!r}")
    if not workload.startswith("spiffe://"):
        raise ValueError("workload must be a spiffe:// id")
    if ttl_s is not None and (isinstance(ttl_s, bool) or not isinstance(ttl_s, int) or ttl_s <= 0):
        raise ValueError("ttl_s must be a positive number of seconds")
    if isinstance(categories, str):
        raise TypeError("categories must be a list of strings, not one string")
    action: Dict[str, Any] = {"tool": tool, "args": json_args(args or {}), "reversible": bool(reversible)}
    if operation is not None:
        action["operation"] = operation
    draft: Draft = {
        "identity": {
            "workload": workload,
            "display": display,
            "on_behalf_of": [_principal(p) for p in on_behalf_of],
        },
        "purpose": {"code": purpose, "statement": statement},
        "data": {"class": data_class, "categories": [str(c) for c in categories]},
        "target": {"system": system, "environment": environment},
        "actions": [action],
    }
    if ttl_s is not None:
        draft["ttl_s"] = ttl_s
    return draft
