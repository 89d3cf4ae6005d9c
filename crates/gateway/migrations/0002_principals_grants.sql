-- Approvers are principals; keys are theirs. Grants are credentials. Agents have registered owners.

-- The normalized principal (NFKC, trimmed, case-folded), filled in by the gateway for older rows.
ALTER TABLE approvers ADD COLUMN principal_key TEXT;
-- A key stops deciding when it is rotated away, replaced or removed; its row stays so that what it
-- signed stays verifiable.
ALTER TABLE approvers ADD COLUMN retired_at INTEGER;
ALTER TABLE approvers ADD COLUMN retired_why TEXT CHECK (retired_why IN ('rotated', 'replaced', 'removed', 'duplicate'));
ALTER TABLE approvers ADD COLUMN replaced_by TEXT;
-- One active key per principal.
CREATE UNIQUE INDEX approvers_one_active ON approvers(principal_key) WHERE retired_at IS NULL AND principal_key IS NOT NULL;

-- The principal a decision counts for: quorum counts distinct principals, never keys.
ALTER TABLE decisions ADD COLUMN principal TEXT;
CREATE INDEX decisions_principal ON decisions(request_id, principal);

-- The registered owners of a workload (agents add --owner): nobody approves a request of an agent
-- they own, whatever the agent declares on whose behalf it acts.
CREATE TABLE agent_owners (
    workload   TEXT NOT NULL,
    owner      TEXT NOT NULL,            -- normalized principal
    PRIMARY KEY (workload, owner)
);

-- The environment the grant is for (the request's target environment).
ALTER TABLE step_ups ADD COLUMN target_environment TEXT NOT NULL DEFAULT '';

-- Target systems that redeem grants (systems add): bearer token stored hashed.
CREATE TABLE target_systems (
    token_hash  TEXT PRIMARY KEY,
    system      TEXT NOT NULL,
    environment TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

-- Every grant issued, with its use count: redemption counts atomically.
CREATE TABLE grants (
    jti         TEXT PRIMARY KEY,
    request_id  TEXT NOT NULL REFERENCES step_ups(id),
    workload    TEXT NOT NULL,
    system      TEXT NOT NULL,
    environment TEXT NOT NULL,
    digest      TEXT NOT NULL,
    max_uses    INTEGER NOT NULL CHECK (max_uses >= 1),
    uses        INTEGER NOT NULL DEFAULT 0 CHECK (uses <= max_uses),
    exp         INTEGER NOT NULL,
    revoked_at  INTEGER
);
CREATE INDEX grants_request ON grants(request_id);

-- Rotation statements seen (a statement is accepted once).
CREATE TABLE rotations (
    jti        TEXT PRIMARY KEY,
    old_kid    TEXT NOT NULL,
    new_kid    TEXT NOT NULL,
    jwt        TEXT NOT NULL,
    at         INTEGER NOT NULL
);
