"""The agent's HTTP client of a Countersign gateway: submit a draft, wait for its resolution, withdraw it."""

from __future__ import annotations

import ipaddress
import json
import math
import os
import stat
import time
from typing import Any, Callable, Dict, Mapping, Optional, Tuple, TypeVar, Union
from urllib.parse import quote, urlsplit

import requests

from .errors import GatewayError
from .results import State, Status, Submission, parse_status, parse_submission

T = TypeVar("T")

#: The environment variable holding the agent token when none is passed.
TOKEN_ENV = "COUNTERSIGN_AGENT_TOKEN"
#: The environment variable naming a file that holds the agent token.
TOKEN_FILE_ENV = "COUNTERSIGN_AGENT_TOKEN_FILE"
#: The longest long-poll the gateway holds (``MAX_WAIT_S``).
MAX_WAIT_S = 60
#: How long past a request's expiry ``wait()`` keeps asking before it gives up on a pending answer.
EXPIRY_GRACE_S = 30
#: Largest answer body read from the gateway.
MAX_ANSWER_BYTES = 1 << 20
#: Longest ``Idempotency-Key`` the gateway takes.
MAX_IDEMPOTENCY_KEY = 200


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _read_token_file(path: Union[str, "os.PathLike[str]"]) -> str:
    """The token in ``path``; refused when others than its owner may read the file (POSIX)."""
    st = os.stat(path)
    if os.name == "posix" and st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ValueError(f"token file {os.fspath(path)!r} is accessible by group or others: chmod 600 it")
    with open(path, encoding="utf-8") as f:
        return f.read().strip()


def _resolve_token(token: Optional[str], token_file: Optional[Union[str, "os.PathLike[str]"]]) -> str:
    if token is None and token_file is not None:
        token = _read_token_file(token_file)
    if token is None:
        token = os.environ.get(TOKEN_ENV) or None
    if token is None and os.environ.get(TOKEN_FILE_ENV):
        token = _read_token_file(os.environ[TOKEN_FILE_ENV])
    if not token:
        raise ValueError(f"no agent token: pass token= or token_file=, or set {TOKEN_ENV} or {TOKEN_FILE_ENV}")
    token = token.strip()
    if not token.startswith("csa_") or not all(33 <= ord(c) < 127 for c in token):
        raise ValueError("an agent token starts with 'csa_' and holds no spaces or control characters")
    return token


def _parsed(parse: Callable[[Any], T], code: int, answer: Any) -> T:
    """``parse(answer)``, its refusal tagged with the HTTP status the answer came with."""
    try:
        return parse(answer)
    except GatewayError as e:
        raise GatewayError(e.code, e.message, code) from None


class Client:
    """An agent's connection to one Countersign gateway (enforcement point).

    ``url`` is the gateway's base URL, e.g. ``http://127.0.0.1:8787``; plain ``http`` is refused for
    any host but loopback unless ``allow_insecure_http`` is set (the token would travel in clear).
    The agent token (``csa_…``, from ``countersign-gateway agents add``) is ``token``, else read from
    ``token_file``, else from the ``COUNTERSIGN_AGENT_TOKEN`` environment variable, else from the file
    named by ``COUNTERSIGN_AGENT_TOKEN_FILE``; token files must not be readable by others.
    ``timeout`` bounds every HTTP call in seconds (a long-poll gets its wait on top).

    Every failure to get a valid answer raises :class:`~countersign.GatewayError`: nothing is ever
    treated as approved unless the gateway said so.
    """

    def __init__(
        self,
        url: str,
        token: Optional[str] = None,
        *,
        token_file: Optional[Union[str, "os.PathLike[str]"]] = None,
        timeout: float = 10.0,
        allow_insecure_http: bool = False,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"gateway url must be http(s)://host[:port], not {url!r}")
        if parts.scheme == "http" and not allow_insecure_http and not _is_loopback(parts.hostname):
            raise ValueError("plain http is only allowed to a loopback gateway; use https")
        if parts.query or parts.fragment:
            raise ValueError("gateway url must not have a query or fragment")
        if not (isinstance(timeout, (int, float)) and timeout > 0):
            raise ValueError("timeout must be a positive number of seconds")
        self.url = url.rstrip("/")
        self.timeout = float(timeout)
        self._token = _resolve_token(token, token_file)
        self._http = requests.Session()
        self._http.trust_env = False  # no .netrc credentials or proxy settings picked up behind our back

    def __repr__(self) -> str:
        return f"Client({self.url!r})"

    def close(self) -> None:
        """Close the pooled connections."""
        self._http.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def submit(self, draft: Mapping[str, Any], idempotency_key: Optional[str] = None) -> Submission:
        """Submit a step-up draft (``POST /v1/step-ups``); the gateway's first answer.

        ``draft`` is a JSON object shaped like :func:`~countersign.build_draft`'s result. With an
        ``idempotency_key`` (printable ASCII, at most 200 characters) a retry of the same key
        returns the first answer instead of a new request. Raises ``TypeError`` when the draft is
        not JSON, and :class:`GatewayError` for any refusal (a malformed draft is ``malformed`` with
        the gateway's explanation) or transport failure.
        """
        body = json.dumps(draft, allow_nan=False, ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if idempotency_key is not None:
            if not (0 < len(idempotency_key) <= MAX_IDEMPOTENCY_KEY) or not all(
                32 <= ord(c) < 127 for c in idempotency_key
            ):
                raise ValueError("idempotency_key must be 1 to 200 printable ASCII characters")
            headers["Idempotency-Key"] = idempotency_key
        code, answer = self._call("POST", "/v1/step-ups", (200, 201), data=body, headers=headers)
        return _parsed(parse_submission, code, answer)

    def status(self, request_id: str) -> Status:
        """The request's status now (``GET /v1/step-ups/{id}``), without waiting."""
        return self._status(request_id, 0)

    def wait(self, request_id: str, timeout: Optional[float] = None) -> Status:
        """Wait until the request is resolved (approved, denied, expired, withdrawn); its status then.

        Long-polls ``GET /v1/step-ups/{id}?wait=S`` (S ≤ 60) in a loop. With ``timeout`` (seconds)
        it returns the status after at most about that long, which may still be ``pending``; without,
        it waits until the request resolves, or until well past its expiry if the gateway never says
        it expired (then the last, pending, status is returned). Check ``.state`` on the result.
        """
        deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
        while True:
            wait_s = MAX_WAIT_S
            if deadline is not None:
                wait_s = min(MAX_WAIT_S, max(0, math.ceil(deadline - time.monotonic())))
            asked = time.monotonic()
            status = self._status(request_id, wait_s)
            if status.state.resolved:
                return status
            if deadline is not None and time.monotonic() >= deadline:
                return status
            if deadline is None and time.time() > status.expires_at + EXPIRY_GRACE_S:
                return status
            if time.monotonic() - asked < 0.2:
                time.sleep(0.5)  # the gateway answered at once while pending: do not spin

    def withdraw(self, request_id: str) -> None:
        """Withdraw a pending request (``DELETE /v1/step-ups/{id}``).

        Raises :class:`GatewayError` with code ``conflict`` when it is no longer pending (the
        message says its state), ``forbidden`` when another workload owns it, ``not_found``.
        """
        _, answer = self._call("DELETE", f"/v1/step-ups/{quote(request_id, safe='')}", (200,))
        if not isinstance(answer, dict) or answer.get("state") != State.WITHDRAWN.value:
            raise GatewayError("bad_answer", "the gateway did not confirm the withdrawal", 200)

    def _status(self, request_id: str, wait_s: int) -> Status:
        path = f"/v1/step-ups/{quote(request_id, safe='')}"
        params = {"wait": str(wait_s)} if wait_s > 0 else None
        code, answer = self._call("GET", path, (200,), params=params, extra_read_s=wait_s)
        status = _parsed(parse_status, code, answer)
        if status.id != request_id:
            raise GatewayError("bad_answer", "the gateway answered about another request")
        return status

    def _call(
        self,
        method: str,
        path: str,
        ok: Tuple[int, ...],
        *,
        extra_read_s: float = 0,
        **kwargs: Any,
    ) -> Tuple[int, Any]:
        """One HTTP call: (status, parsed JSON body) for an expected status, else GatewayError."""
        headers: Dict[str, str] = dict(kwargs.pop("headers", None) or {})
        headers["Authorization"] = f"Bearer {self._token}"
        headers["Accept"] = "application/json"
        try:
            with self._http.request(
                method,
                self.url + path,
                headers=headers,
                timeout=(self.timeout, self.timeout + extra_read_s),
                allow_redirects=False,
                stream=True,
                **kwargs,
            ) as r:
                raw = bytearray()
                for chunk in r.iter_content(65536):
                    raw += chunk
                    if len(raw) > MAX_ANSWER_BYTES:
                        raise GatewayError("bad_answer", f"the gateway's answer is larger than {MAX_ANSWER_BYTES} bytes", r.status_code)
                code = r.status_code
        except requests.RequestException as e:
            raise GatewayError("unreachable", f"{method} {self.url}{path} failed: {e}") from None
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            body = None
        if code in ok:
            if body is None:
                raise GatewayError("bad_answer", "the gateway's answer is not JSON", code)
            return code, body
        if isinstance(body, dict) and isinstance(body.get("error"), str) and isinstance(body.get("message"), str):
            raise GatewayError(body["error"], body["message"], code)
        raise GatewayError("bad_answer", f"unexpected HTTP {code} without a Countersign error body", code)
