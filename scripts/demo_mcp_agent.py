"""The demo's MCP scenario: an agent whose tool call waits in the console until a human approves it.

Started by `scripts/demo.sh --mcp` beside the console. It reads the embedded demo gateway's URL from the app's
log, registers an agent and the target system with that gateway (`countersign-gateway agents add` /
`systems add` on its data directory), writes a `countersign-mcp` config, and then plays an MCP client: over
stdio, through `countersign-mcp stdio`, to the real `server-everything`. It calls `echo` with a confidential,
irreversible profile, so the gateway's default policy holds the call for an approver. Progress is printed while
the call is held, then the server's answer or the refusal. Standard library only.
"""

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / "target" / "debug"
SERVER = ROOT / "tests/mcp/node_modules/@modelcontextprotocol/server-everything/dist/index.js"
WORKLOAD = "spiffe://acme.example/ns/dev/sa/claude-code"
URL_LINE = re.compile(r"demo gateway running url=(http://127\.0\.0\.1:\d+)")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def say(text: str) -> None:
    # Server and gateway text is hostile: control, bidi and other invisible characters are shown as escapes.
    safe = "".join(c if c.isprintable() else f"\\u{{{ord(c):04x}}}" for c in text)
    print(f"\n[mcp demo] {safe}", file=sys.stderr, flush=True)


def gateway_url(log: Path, seconds: int = 180) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if log.exists():
            m = URL_LINE.search(ANSI.sub("", log.read_text(errors="replace")))
            if m:
                return m.group(1)
        time.sleep(0.5)
    raise SystemExit("[mcp demo] the console did not start its demo gateway; no MCP scenario")


def cli(*args: str) -> str:
    out = subprocess.run([str(BIN / "countersign-gateway"), *args], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def write_private(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o600)


def config(work: Path, url: str, data: Path) -> Path:
    write_private(work / "agent.token", cli("agents", "add", "--data", str(data), "--workload", WORKLOAD,
                                            "--owner", "jo@acme.example"))
    write_private(work / "system.token", cli("systems", "add", "--data", str(data), "--system", "crm",
                                             "--environment", "production"))
    path = work / "countersign.toml"
    path.write_text(f"""[gateway]
url = "{url}"
token_file = "agent.token"
system_token_file = "system.token"

[agent]
workload = "{WORKLOAD}"
display = "Claude Code (MCP demo)"
on_behalf_of = [{{ sub = "jo@acme.example", display = "Jo Example" }}]

[target]
system = "crm"
environment = "production"

[purpose]
code = "support.ticket"
statement = "Send ticket 4711's customer the export they asked for"

[tools.echo]
class = "confidential"
categories = ["pii"]
reversible = false
operation = "send"
""")
    return path


class Session:
    """A minimal MCP client over a child's stdio (JSON-RPC, one message per line)."""

    def __init__(self, command: list[str]):
        self.proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def send(self, message: dict) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(message) + "\n")
        self.proc.stdin.flush()

    def answer(self, id_: object) -> dict:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            message = json.loads(line)
            if message.get("method") == "notifications/progress":
                say(f"held: {message['params'].get('message', '')}")
            elif message.get("id") == id_ and "method" not in message:
                return message
        raise SystemExit("[mcp demo] the proxy closed the session")

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=15)


def main() -> None:
    log, profile = Path(sys.argv[1]), Path(sys.argv[2])
    url = gateway_url(log)
    with tempfile.TemporaryDirectory(prefix="countersign-mcp-demo-") as tmp:
        cfg = config(Path(tmp), url, profile / "demo-gateway")
        session = Session([str(BIN / "countersign-mcp"), "stdio", "--config", str(cfg), "--",
                           "node", str(SERVER), "stdio"])
        session.send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "countersign-demo-agent", "version": "1"}}})
        session.answer(1)
        session.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        message = "Customer export for ticket 4711: 1,204 contacts (name, e-mail, phone)"
        say(f"an agent calls the MCP tool `echo` through countersign-mcp: {message!r}")
        say("the gateway holds it: open the request from 'Claude Code (MCP demo)' in the console and approve or deny it")
        session.send({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
            "name": "echo", "arguments": {"message": message}, "_meta": {"progressToken": "demo-1"}}})
        result = session.answer(2).get("result", {})
        text = (result.get("content") or [{}])[0].get("text", "")
        say(("refused: " if result.get("isError") else "the server answered: ") + text)
        session.close()


if __name__ == "__main__":
    main()
