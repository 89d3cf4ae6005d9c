-- The console's profile database: pinned enforcement points, verified requests, signed decisions and
-- their outbox, public keys (never private ones), and the append-only, hash-chained review history.

-- Public keys this profile has signed with; the private key lives only in the OS keyring.
CREATE TABLE keys (
    kid        TEXT PRIMARY KEY,
    jwk        TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    retired_at INTEGER
);

-- Enforcement points and the key pinned when each was added.
CREATE TABLE eps (
    ep            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    url           TEXT NOT NULL UNIQUE,
    kid           TEXT NOT NULL,
    jwk           TEXT NOT NULL,
    added_at      INTEGER NOT NULL,
    last_event_id TEXT,
    last_ok_at    INTEGER,
    last_error    TEXT
);

-- Step-up requests whose signature verified against the pinned key. Nothing else is ever stored here.
CREATE TABLE requests (
    ep          TEXT NOT NULL REFERENCES eps(ep) ON DELETE CASCADE,
    id          TEXT NOT NULL,
    jwt         TEXT NOT NULL,
    claims      TEXT NOT NULL,
    digest      TEXT NOT NULL,
    tier        TEXT NOT NULL,
    workload    TEXT NOT NULL,
    iat         INTEGER NOT NULL,
    exp         INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    -- What the enforcement point last said: pending, approved, denied, expired, withdrawn.
    state       TEXT NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'approved', 'denied', 'expired', 'withdrawn')),
    PRIMARY KEY (ep, id)
);
CREATE INDEX requests_state ON requests (state, exp);
CREATE INDEX requests_id ON requests (id);

-- Signed decisions. `outcome` is NULL until the enforcement point answered: 'accepted' or 'refused'.
CREATE TABLE decisions (
    jti        TEXT PRIMARY KEY,
    ep         TEXT NOT NULL,
    request_id TEXT NOT NULL,
    kid        TEXT NOT NULL,
    verdict    TEXT NOT NULL CHECK (verdict IN ('approve', 'deny')),
    reason     TEXT NOT NULL,
    token      TEXT NOT NULL,
    signed_at  INTEGER NOT NULL,
    outcome    TEXT CHECK (outcome IN ('accepted', 'refused')),
    answer     TEXT,
    FOREIGN KEY (ep, request_id) REFERENCES requests (ep, id) ON DELETE CASCADE
);
CREATE INDEX decisions_request ON decisions (ep, request_id);

-- Decisions still to deliver; a row leaves the outbox only when the enforcement point answered for good.
CREATE TABLE outbox (
    jti             TEXT PRIMARY KEY REFERENCES decisions (jti) ON DELETE CASCADE,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT
);

-- Tokens that failed verification, so each is recorded in the history once, not at every sync.
CREATE TABLE rejected (
    ep     TEXT NOT NULL,
    digest TEXT NOT NULL,
    PRIMARY KEY (ep, digest)
);

-- Append-only review history: hash = SHA-256(prev_hash || RFC 8785 JSON of the row's other columns).
CREATE TABLE history (
    seq        INTEGER PRIMARY KEY,
    at         INTEGER NOT NULL,
    kind       TEXT NOT NULL,
    ep         TEXT,
    request_id TEXT,
    detail     TEXT NOT NULL,
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL
);
CREATE INDEX history_request ON history (request_id);
CREATE INDEX history_at ON history (at);
CREATE INDEX history_kind ON history (kind, seq);

CREATE TRIGGER history_no_update BEFORE UPDATE ON history
BEGIN SELECT RAISE(ABORT, 'history is append-only'); END;
CREATE TRIGGER history_no_delete BEFORE DELETE ON history
BEGIN SELECT RAISE(ABORT, 'history is append-only'); END;

-- Full-text index over each history row's kind and detail.
CREATE VIRTUAL TABLE history_fts USING fts5 (body, tokenize = 'unicode61');
CREATE TRIGGER history_fts_insert AFTER INSERT ON history
BEGIN INSERT INTO history_fts (rowid, body) VALUES (new.seq, new.kind || ' ' || new.detail); END;
