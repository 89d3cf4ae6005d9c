"""Interoperability check: an approver written with PyJWT and an RFC 8785 library alone.

Usage: pyjwt_client.py keygen KEYFILE JWKFILE
       pyjwt_client.py approve GATEWAY_URL KEYFILE PRINCIPAL

`approve` reads the gateway's pending requests, verifies each signature against the published
JWKS with PyJWT, recomputes each digest with rfc8785, then signs (with PyJWT) and posts a decision
on one request that needs no binding code and was not made on PRINCIPAL's behalf, and checks that
a decision for a tampered digest is refused with 422. Every check is counted and printed; any
failed check (or a missing request to check against) exits non-zero — no `assert`, which
PYTHONOPTIMIZE would remove. No code of Countersign's is used.
"""

import base64
import hashlib
import json
import secrets
import sys
import time

import jwt
import requests
import rfc8785
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


PASSED = 0


def check(condition, message) -> None:
    """Count a check; stop with a non-zero exit when it fails."""
    global PASSED
    if not condition:
        print(f"interop check failed: {message}", file=sys.stderr)
        print(f"interop: {PASSED} passed, 1 failed")
        sys.exit(1)
    PASSED += 1


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def public_jwk(key: Ed25519PrivateKey) -> dict:
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {"kty": "OKP", "crv": "Ed25519", "x": b64(raw)}


def thumbprint(jwk: dict) -> str:
    canonical = json.dumps({"crv": jwk["crv"], "kty": jwk["kty"], "x": jwk["x"]}, separators=(",", ":"))
    return b64(hashlib.sha256(canonical.encode()).digest())


def keygen(keyfile: str, jwkfile: str) -> None:
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    with open(keyfile, "wb") as f:
        f.write(pem)
    with open(jwkfile, "w") as f:
        json.dump(public_jwk(key), f)


def approve(url: str, keyfile: str, principal: str) -> None:
    with open(keyfile, "rb") as f:
        key = serialization.load_pem_private_key(f.read(), password=None)
    kid = thumbprint(public_jwk(key))
    wk = requests.get(f"{url}/.well-known/countersign", timeout=10).json()
    ep = wk["ep"]
    ep_keys = {}
    for k in wk["jwks"]["keys"]:
        check(thumbprint(k) == k["kid"], "published kid is not the RFC 7638 thumbprint")
        ep_keys[k["kid"]] = jwt.PyJWK(dict(k, alg="EdDSA")).key

    now = int(time.time())
    auth = jwt.encode({"iss": kid, "aud": ep, "iat": now, "exp": now + 120, "jti": secrets.token_urlsafe(16)},
                      key, algorithm="EdDSA", headers={"kid": kid, "typ": "countersign-auth+jwt"})
    headers = {"Authorization": f"Bearer {auth}"}
    # The demo submits its first requests as it starts: wait (bounded) until there are enough to
    # approve one and tamper with another.
    deadline = time.time() + 30
    while True:
        r = requests.get(f"{url}/v1/step-ups?state=pending", headers=headers, timeout=10)
        check(r.status_code == 200, f"pending list: HTTP {r.status_code} {r.text}")
        items = r.json()["items"]
        if len(items) >= 2 or time.time() > deadline:
            break
        time.sleep(0.2)
    check(len(items) >= 2, f"expected at least two pending requests, found {len(items)}")

    chosen = None
    for item in items:
        header = jwt.get_unverified_header(item["jwt"])
        check(header["alg"] == "EdDSA" and header["typ"] == "countersign-step-up+jwt", header)
        claims = jwt.decode(item["jwt"], ep_keys[header["kid"]], algorithms=["EdDSA"],
                            options={"verify_aud": False, "require": ["exp", "iat"]})
        check(claims["jti"] == item["id"] and claims["iss"] == ep, f"request {item['id']}: jti or iss")
        digest = "sha256:" + b64(hashlib.sha256(rfc8785.dumps(claims)).digest())
        subs = [p["sub"] for p in claims["identity"].get("on_behalf_of", [])]
        if chosen is None and not claims.get("binding") and principal not in subs:
            chosen = (claims, digest)
    print(f"verified {len(items)} pending requests with PyJWT; digests recomputed with rfc8785")
    check(chosen, "no request without a binding code")

    claims, digest = chosen
    now = int(time.time())
    decision = {
        "iss": kid, "aud": ep, "sub": claims["jti"], "iat": now, "exp": min(claims["exp"], now + 120),
        "jti": secrets.token_urlsafe(16), "digest": digest, "decision": "approve",
        "reason": "interoperability check: approved by a PyJWT client",
    }
    token = jwt.encode(decision, key, algorithm="EdDSA", headers={"kid": kid, "typ": "countersign-decision+jwt"})
    r = requests.post(f"{url}/v1/step-ups/{claims['jti']}/decisions", data=token,
                      headers=dict(headers, **{"Content-Type": "application/jwt"}), timeout=10)
    check(r.status_code == 200, (r.status_code, r.text))
    body = r.json()
    print(f"decision accepted: {body}")
    check(body["approvals"] == 1, body)

    # What an approver reads back: who decided and why, never the decision token.
    r = requests.get(f"{url}/v1/step-ups/{claims['jti']}", headers=headers, timeout=10)
    check(r.status_code == 200 and token not in r.text, f"status shows the decision token: {r.text}")
    check(r.json()["decisions"][0]["kid"] == kid, r.text)

    # A decision for a tampered digest is refused with 422 (the contract's code, nothing else).
    other = next(i for i in items if i["id"] != claims["jti"])
    oc = jwt.decode(other["jwt"], options={"verify_signature": False})
    bad = dict(decision, sub=oc["jti"], exp=min(oc["exp"], now + 120), jti=secrets.token_urlsafe(16),
               digest="sha256:" + b64(b"\0" * 32))
    token = jwt.encode(bad, key, algorithm="EdDSA", headers={"kid": kid, "typ": "countersign-decision+jwt"})
    r = requests.post(f"{url}/v1/step-ups/{oc['jti']}/decisions", data=token, headers=headers, timeout=10)
    check(r.status_code == 422, (r.status_code, r.text))
    print(f"tampered digest refused with {r.status_code}")
    print(f"interop: {PASSED} passed, 0 failed")


if __name__ == "__main__":
    if sys.argv[1] == "keygen":
        keygen(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "approve":
        approve(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        sys.exit(__doc__)
