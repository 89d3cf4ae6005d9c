"""Starts the real gateway binary on loopback with the test policy, an agent token and an enrolled test approver."""

from __future__ import annotations

import os
import re
import selectors
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional

from harness_approver import TestApprover, new_key

REPO = Path(__file__).resolve().parents[3]
GATEWAY = Path(os.environ.get("COUNTERSIGN_GATEWAY_BIN", REPO / "target/debug/countersign-gateway"))
POLICY = REPO / "tests/fixtures/test-policy.rego"
WORKLOAD = "spiffe://acme.example/ns/test/sa/pytest"
OWNER = "owner@acme.example"
APPROVER = "approver@acme.example"


def _run(*args: str) -> str:
    done = subprocess.run([str(GATEWAY), *args], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"countersign-gateway {args[0]} {args[1]} failed: {done.stderr}")
    return done.stdout


@dataclass
class RunningGateway:
    """A gateway process serving on loopback, and what the tests need to talk to it."""

    url: str
    token: str
    data: Path
    approver: TestApprover
    process: "subprocess.Popen[bytes]"

    def draft(self, purpose: str, statement: Optional[str] = None, **action: Any) -> Dict[str, Any]:
        """A valid one-action draft for this gateway's agent; ``statement`` defaults to a fresh unique one."""
        d: Dict[str, Any] = {
            "identity": {"workload": WORKLOAD, "display": "pytest agent",
                         "on_behalf_of": [{"sub": "jo@acme.example", "display": "Jo"}]},
            "purpose": {"code": purpose, "statement": statement or f"pytest {uuid.uuid4()}"},
            "data": {"class": "internal", "categories": []},
            "target": {"system": "crm", "environment": "production"},
            "actions": [{"tool": "export_contacts", "args": {"limit": 10}, "reversible": False}],
        }
        ttl_s = action.pop("ttl_s", None)
        d["actions"][0].update(action)
        if ttl_s is not None:
            d["ttl_s"] = ttl_s
        return d

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start(workdir: Path) -> RunningGateway:
    """Enrol an approver, register the agent, serve; fails (never skips) when the binary is missing."""
    if not GATEWAY.is_file():
        raise RuntimeError(f"{GATEWAY} is missing: build it with `cargo build -p countersign-gateway`")
    data = workdir / "gw"
    key = new_key(workdir / "approver.jwk")
    _run("approvers", "add", "--data", str(data), "--name", "pytest approver", "--principal", APPROVER,
         "--jwk", str(workdir / "approver.jwk"))
    token = re.search(r"csa_\S+", _run("agents", "add", "--data", str(data), "--workload", WORKLOAD, "--owner", OWNER))
    if token is None:
        raise RuntimeError("`agents add` printed no token")
    with open(workdir / "gateway.log", "wb") as log:
        process = subprocess.Popen(
            [str(GATEWAY), "serve", "--listen", "127.0.0.1:0", "--data", str(data), "--policy", str(POLICY),
             "--rate-limit", "600"],
            stdout=subprocess.PIPE, stderr=log,
        )
    stdout = process.stdout
    if stdout is None:
        raise RuntimeError("no pipe to the gateway's stdout")
    selector = selectors.DefaultSelector()
    selector.register(stdout, selectors.EVENT_READ)
    deadline, line = time.monotonic() + 20, b""
    while b"\n" not in line and time.monotonic() < deadline and process.poll() is None:
        if selector.select(timeout=0.2):
            line += os.read(stdout.fileno(), 4096)
    found = re.search(rb"listening on (http://127\.0\.0\.1:\d+)", line)
    if found is None:
        process.kill()
        raise RuntimeError(f"the gateway did not start: {(workdir / 'gateway.log').read_text()}")
    url = found.group(1).decode()
    return RunningGateway(url, token.group(0), data, TestApprover(url, key), process)
