-- The reference gateway's store. Forward-only migrations.

CREATE TABLE approvers (
    kid        TEXT PRIMARY KEY,          -- RFC 7638 thumbprint of the approver's key
    name       TEXT NOT NULL,
    principal  TEXT NOT NULL,             -- e-mail; used for the self-approval check
    jwk        TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE agents (
    token_hash TEXT PRIMARY KEY,          -- hex SHA-256 of the bearer token; the token itself is never stored
    workload   TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX agents_workload ON agents(workload);

CREATE TABLE step_ups (
    id                 TEXT PRIMARY KEY,
    workload           TEXT NOT NULL,
    state              TEXT NOT NULL CHECK (state IN ('pending','approved','denied','expired','withdrawn')),
    jwt                TEXT,               -- the signed request; NULL when the policy answered without a human
    digest             TEXT,
    tier               TEXT,
    approvals_required INTEGER NOT NULL DEFAULT 0,
    policy_id          TEXT NOT NULL,
    reason             TEXT NOT NULL,
    binding_code       TEXT,
    binding_failures   INTEGER NOT NULL DEFAULT 0,
    on_behalf_of       TEXT NOT NULL DEFAULT '[]',  -- JSON array of subs, for the self-approval check
    target_system      TEXT NOT NULL,
    iat                INTEGER NOT NULL,
    exp                INTEGER NOT NULL,
    resolved_at        INTEGER,
    grant_jwt          TEXT,
    idempotency_key    TEXT,
    response           TEXT NOT NULL      -- the JSON first returned to the agent (Idempotency-Key replays)
);
CREATE INDEX step_ups_state ON step_ups(state, exp);
CREATE UNIQUE INDEX step_ups_idem ON step_ups(workload, idempotency_key) WHERE idempotency_key IS NOT NULL;

CREATE TABLE decisions (
    jti         TEXT PRIMARY KEY,
    request_id  TEXT NOT NULL REFERENCES step_ups(id),
    approver    TEXT NOT NULL,
    verdict     TEXT NOT NULL CHECK (verdict IN ('approve','deny')),
    jwt         TEXT NOT NULL,
    received_at INTEGER NOT NULL
);
CREATE INDEX decisions_request ON decisions(request_id);

-- Every decision jti ever presented and accepted for checking, so a replay is recognised even
-- when the first presentation was refused after its signature verified.
CREATE TABLE seen_jtis (
    jti     TEXT PRIMARY KEY,
    jwt     TEXT NOT NULL,
    status  INTEGER NOT NULL,
    body    TEXT NOT NULL,
    exp     INTEGER NOT NULL
);

CREATE TABLE events (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    kind       TEXT NOT NULL,
    data       TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
