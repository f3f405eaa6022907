-- The workspace database the diagnosis reads: workspaces, members, invitations, delivery events and
-- suppressions. Times are stored as RFC 3339 text in UTC, which sorts chronologically.

CREATE TABLE IF NOT EXISTS workspaces (
    id          INTEGER PRIMARY KEY,
    slug        TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS members (
    id            INTEGER PRIMARY KEY,
    workspace_id  INTEGER NOT NULL REFERENCES workspaces(id),
    email         TEXT NOT NULL,            -- as the admin entered it
    email_key     TEXT NOT NULL,            -- lower-case local @ punycode domain
    local_key     TEXT NOT NULL,
    domain_key    TEXT NOT NULL,
    local_rev     TEXT NOT NULL,            -- local_key reversed: suffix look-ups become prefix look-ups
    role          TEXT NOT NULL CHECK (role IN ('learner', 'trainer')),
    status        TEXT NOT NULL CHECK (status IN ('invited', 'active', 'deactivated')),
    invited_at    TEXT,
    activated_at  TEXT
);
-- Exact look-up by normalized address, in one workspace or across all: one btree, key first.
CREATE UNIQUE INDEX IF NOT EXISTS members_email_key ON members (email_key, workspace_id);
-- Suggestions: candidates that share the local part, or the domain plus a prefix/suffix of the local part.
CREATE INDEX IF NOT EXISTS members_local_key ON members (local_key);
CREATE INDEX IF NOT EXISTS members_domain_local ON members (domain_key, local_key);
CREATE INDEX IF NOT EXISTS members_domain_local_rev ON members (domain_key, local_rev);

CREATE TABLE IF NOT EXISTS invitations (
    id          INTEGER PRIMARY KEY,
    member_id   INTEGER NOT NULL REFERENCES members(id),
    sent_at     TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    message_id  TEXT UNIQUE,                -- the provider's id, to attach delivery events
    token_hash  TEXT UNIQUE,                -- SHA-256 of the activation token; the token itself is never stored
    revoked_at  TEXT
);
CREATE INDEX IF NOT EXISTS invitations_member_sent ON invitations (member_id, sent_at);

CREATE TABLE IF NOT EXISTS delivery_events (
    id                INTEGER PRIMARY KEY,
    event_key         TEXT NOT NULL UNIQUE, -- makes a provider retry or a re-seed store nothing new
    invitation_id     INTEGER REFERENCES invitations(id),
    message_id        TEXT,
    recipient_key     TEXT NOT NULL,
    recipient_domain  TEXT NOT NULL,
    event             TEXT NOT NULL CHECK (event IN ('delivered', 'deferred', 'bounced', 'spam_complaint')),
    bounce_kind       TEXT CHECK (bounce_kind IN ('hard', 'soft')),
    at                TEXT NOT NULL,
    detail            TEXT,
    CHECK ((event = 'bounced') = (bounce_kind IS NOT NULL))
);
CREATE INDEX IF NOT EXISTS delivery_events_invitation ON delivery_events (invitation_id, at);
CREATE INDEX IF NOT EXISTS delivery_events_message ON delivery_events (message_id);
CREATE INDEX IF NOT EXISTS delivery_events_domain ON delivery_events (recipient_domain, at);

CREATE TABLE IF NOT EXISTS suppressions (
    id         INTEGER PRIMARY KEY,
    email_key  TEXT NOT NULL,
    reason     TEXT NOT NULL CHECK (reason IN ('hard_bounce', 'spam_complaint', 'unsubscribe', 'manual')),
    at         TEXT NOT NULL,
    UNIQUE (email_key, reason)
);
