"""A test approver written with PyJWT and rfc8785 alone: finds a pending request, verifies it, signs a decision."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Dict, Set, Tuple

import jwt
import requests
import rfc8785
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def public_jwk(key: Ed25519PrivateKey) -> Dict[str, str]:
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {"kty": "OKP", "crv": "Ed25519", "x": _b64(raw)}


def thumbprint(jwk: Dict[str, str]) -> str:
    canonical = json.dumps({"crv": jwk["crv"], "kty": jwk["kty"], "x": jwk["x"]}, separators=(",", ":"))
    return _b64(hashlib.sha256(canonical.encode()).digest())


def new_key(jwk_file: Path) -> Ed25519PrivateKey:
    """A fresh approver key; its public JWK is written to ``jwk_file`` for ``approvers add --jwk``."""
    key = Ed25519PrivateKey.generate()
    jwk_file.write_text(json.dumps(public_jwk(key)))
    return key


class TestApprover:
    """An approver enrolled with the gateway under test (``approvers add``)."""

    __test__ = False  # not a test class, whatever its name

    def __init__(self, url: str, key: Ed25519PrivateKey) -> None:
        self.url = url
        self.key = key
        self.kid = thumbprint(public_jwk(key))
        known = requests.get(f"{url}/.well-known/countersign", timeout=10).json()
        self.ep = known["ep"]
        self.ep_keys = {k["kid"]: jwt.PyJWK(dict(k, alg="EdDSA")).key for k in known["jwks"]["keys"]}
        self.pool = ThreadPoolExecutor(max_workers=4)

    def _headers(self) -> Dict[str, str]:
        now = int(time.time())
        claims = {"iss": self.kid, "aud": self.ep, "iat": now, "exp": now + 120, "jti": secrets.token_urlsafe(16)}
        token = jwt.encode(claims, self.key, algorithm="EdDSA", headers={"kid": self.kid, "typ": "countersign-auth+jwt"})
        return {"Authorization": f"Bearer {token}"}

    def ids_in_state(self, state: str) -> Set[str]:
        """The ids of the requests in ``state`` (the approvers' backfill list)."""
        r = requests.get(f"{self.url}/v1/step-ups", params={"state": state}, headers=self._headers(), timeout=10)
        r.raise_for_status()
        return {item["id"] for item in r.json()["items"]}

    def pending(self, statement: str, timeout: float = 20) -> Tuple[str, Dict[str, Any]]:
        """The pending request whose purpose statement is ``statement``: (id, claims verified with the gateway's key)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = requests.get(f"{self.url}/v1/step-ups", params={"state": "pending"}, headers=self._headers(), timeout=10)
            r.raise_for_status()
            for item in r.json()["items"]:
                header = jwt.get_unverified_header(item["jwt"])
                claims = jwt.decode(item["jwt"], self.ep_keys[header["kid"]], algorithms=["EdDSA"],
                                    options={"verify_aud": False, "require": ["exp", "iat"]})
                if claims["purpose"]["statement"] == statement:
                    return item["id"], claims
            time.sleep(0.1)
        raise TimeoutError(f"no pending request with statement {statement!r}")

    def decide(self, statement: str, verdict: str, reason: str) -> Dict[str, Any]:
        """Find the pending request by ``statement`` and post a signed decision; the claims it was about.

        Raises when the gateway does not accept the decision with 200.
        """
        request_id, claims = self.pending(statement)
        digest = "sha256:" + _b64(hashlib.sha256(rfc8785.dumps(claims)).digest())
        now = int(time.time())
        decision = {
            "iss": self.kid, "aud": self.ep, "sub": request_id, "iat": now, "exp": min(claims["exp"], now + 120),
            "jti": secrets.token_urlsafe(16), "digest": digest, "decision": verdict, "reason": reason,
        }
        token = jwt.encode(decision, self.key, algorithm="EdDSA",
                           headers={"kid": self.kid, "typ": "countersign-decision+jwt"})
        r = requests.post(f"{self.url}/v1/step-ups/{request_id}/decisions", data=token,
                          headers=dict(self._headers(), **{"Content-Type": "application/jwt"}), timeout=10)
        if r.status_code != 200:
            raise RuntimeError(f"decision refused: HTTP {r.status_code} {r.text}")
        return claims

    def decide_in_background(self, statement: str, verdict: str, reason: str) -> "Future[Dict[str, Any]]":
        """``decide`` in a worker thread, for a caller that blocks until the decision arrives."""
        return self.pool.submit(self.decide, statement, verdict, reason)
