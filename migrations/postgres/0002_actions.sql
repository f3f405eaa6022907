-- The bot's own tables: action requests (idempotency and rate limits), the email outbox, activation
-- codes, escalations and the audit log. Codes and tokens are stored only as hashes.

-- Invitations created by a resend are 'queued' until the SMTP server accepts them; checks only look at
-- 'sent' ones. Seeded and provider-known invitations are 'sent'.
ALTER TABLE invitations ADD COLUMN IF NOT EXISTS send_state TEXT NOT NULL DEFAULT 'sent'
    CHECK (send_state IN ('queued', 'sent', 'failed'));
ALTER TABLE invitations ADD COLUMN IF NOT EXISTS redeemed_at TIMESTAMPTZ;

CREATE TABLE IF NOT EXISTS action_requests (
    id               BIGSERIAL PRIMARY KEY,
    idempotency_key  TEXT UNIQUE,            -- a button press or request id; NULL when none was given
    action           TEXT NOT NULL CHECK (action IN ('resend_invite', 'issue_activation_code', 'escalate')),
    member_id        BIGINT REFERENCES members(id),
    actor_id         TEXT NOT NULL,
    actor_name       TEXT NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('pending', 'done', 'failed')),
    reference        TEXT NOT NULL UNIQUE,
    created_at       TIMESTAMPTZ NOT NULL,
    finished_at      TIMESTAMPTZ
);
CREATE INDEX IF NOT EXISTS action_requests_member ON action_requests (member_id, action, created_at);
CREATE INDEX IF NOT EXISTS action_requests_actor ON action_requests (actor_id, action, created_at);

CREATE TABLE IF NOT EXISTS outbox (
    id                 BIGSERIAL PRIMARY KEY,
    action_request_id  BIGINT NOT NULL REFERENCES action_requests(id),
    invitation_id      BIGINT NOT NULL REFERENCES invitations(id),
    recipient          TEXT NOT NULL,
    state              TEXT NOT NULL CHECK (state IN ('pending', 'sending', 'sent', 'failed')),
    attempts           BIGINT NOT NULL DEFAULT 0,
    next_attempt_at    TIMESTAMPTZ NOT NULL,
    claimed_at         TIMESTAMPTZ,
    last_error         TEXT,
    created_at         TIMESTAMPTZ NOT NULL,
    sent_at            TIMESTAMPTZ
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (state, next_attempt_at);

CREATE TABLE IF NOT EXISTS activation_codes (
    id               BIGSERIAL PRIMARY KEY,
    member_id        BIGINT NOT NULL REFERENCES members(id),
    code_hash        TEXT NOT NULL,          -- argon2id PHC string (salted)
    issued_by        TEXT NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL,
    expires_at       TIMESTAMPTZ NOT NULL,
    used_at          TIMESTAMPTZ,
    voided_at        TIMESTAMPTZ,
    failed_attempts  BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS activation_codes_member ON activation_codes (member_id, created_at);

CREATE TABLE IF NOT EXISTS escalations (
    id                      BIGSERIAL PRIMARY KEY,
    reference               TEXT NOT NULL UNIQUE,
    workspace_id            BIGINT NOT NULL REFERENCES workspaces(id),
    member_id               BIGINT REFERENCES members(id),
    email_key               TEXT COLLATE "C" NOT NULL,
    diagnosis               TEXT NOT NULL,  -- JSON: the check, every finding
    actions_taken           TEXT NOT NULL,  -- JSON: what was already done for this member
    requested_by            TEXT NOT NULL,
    requested_by_name       TEXT NOT NULL,
    note                    TEXT,
    created_at              TIMESTAMPTZ NOT NULL,
    webhook_state           TEXT NOT NULL CHECK (webhook_state IN ('none', 'pending', 'delivered', 'failed')),
    webhook_attempts        BIGINT NOT NULL DEFAULT 0,
    webhook_next_attempt_at TIMESTAMPTZ,
    webhook_last_error      TEXT
);
CREATE INDEX IF NOT EXISTS escalations_member ON escalations (email_key, workspace_id, created_at);
CREATE INDEX IF NOT EXISTS escalations_webhook_due ON escalations (webhook_state, webhook_next_attempt_at);

CREATE TABLE IF NOT EXISTS audit_log (
    id          BIGSERIAL PRIMARY KEY,
    at          TIMESTAMPTZ NOT NULL,
    actor_id    TEXT NOT NULL,
    actor_name  TEXT NOT NULL,
    action      TEXT NOT NULL,
    workspace   TEXT,
    email_key   TEXT,
    outcome     TEXT NOT NULL,
    reason      TEXT,
    reference   TEXT,
    detail      TEXT                       -- never a code or a token
);
CREATE INDEX IF NOT EXISTS audit_log_email ON audit_log (email_key, at);
CREATE INDEX IF NOT EXISTS audit_log_at ON audit_log (at);
