-- The workspace database the diagnosis reads: workspaces, members, invitations, delivery events and
-- suppressions.
--
-- Exact look-ups by normalized address use plain btree indexes. There is deliberately no trigram index
-- on the whole address: the planner can prefer it for equality and make exact look-ups ~100x slower.
-- Fuzzy look-ups use btree prefix ranges on the parts (COLLATE "C" makes `>=`/`<` ranges byte-wise).

CREATE TABLE IF NOT EXISTS workspaces (
    id    BIGSERIAL PRIMARY KEY,
    slug  TEXT NOT NULL UNIQUE,
    name  TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS members (
    id            BIGSERIAL PRIMARY KEY,
    workspace_id  BIGINT NOT NULL REFERENCES workspaces(id),
    email         TEXT NOT NULL,
    email_key     TEXT COLLATE "C" NOT NULL,
    local_key     TEXT COLLATE "C" NOT NULL,
    domain_key    TEXT COLLATE "C" NOT NULL,
    local_rev     TEXT COLLATE "C" NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('learner', 'trainer')),
    status        TEXT NOT NULL CHECK (status IN ('invited', 'active', 'deactivated')),
    invited_at    TIMESTAMPTZ,
    activated_at  TIMESTAMPTZ
);
-- Exact look-up by normalized address, in one workspace or across all: one btree, key first.
CREATE UNIQUE INDEX IF NOT EXISTS members_email_key ON members (email_key, workspace_id);
CREATE INDEX IF NOT EXISTS members_local_key ON members (local_key);
CREATE INDEX IF NOT EXISTS members_domain_local ON members (domain_key, local_key);
CREATE INDEX IF NOT EXISTS members_domain_local_rev ON members (domain_key, local_rev);

CREATE TABLE IF NOT EXISTS invitations (
    id          BIGSERIAL PRIMARY KEY,
    member_id   BIGINT NOT NULL REFERENCES members(id),
    sent_at     TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL,
    message_id  TEXT UNIQUE,
    token_hash  TEXT UNIQUE,
    revoked_at  TIMESTAMPTZ
);
CREATE INDEX IF NOT EXISTS invitations_member_sent ON invitations (member_id, sent_at);

CREATE TABLE IF NOT EXISTS delivery_events (
    id                BIGSERIAL PRIMARY KEY,
    event_key         TEXT NOT NULL UNIQUE,
    invitation_id     BIGINT REFERENCES invitations(id),
    message_id        TEXT,
    recipient_key     TEXT COLLATE "C" NOT NULL,
    recipient_domain  TEXT COLLATE "C" NOT NULL,
    event             TEXT NOT NULL CHECK (event IN ('delivered', 'deferred', 'bounced', 'spam_complaint')),
    bounce_kind       TEXT CHECK (bounce_kind IN ('hard', 'soft')),
    at                TIMESTAMPTZ NOT NULL,
    detail            TEXT,
    CHECK ((event = 'bounced') = (bounce_kind IS NOT NULL))
);
CREATE INDEX IF NOT EXISTS delivery_events_invitation ON delivery_events (invitation_id, at);
CREATE INDEX IF NOT EXISTS delivery_events_message ON delivery_events (message_id);
CREATE INDEX IF NOT EXISTS delivery_events_domain ON delivery_events (recipient_domain, at);

CREATE TABLE IF NOT EXISTS suppressions (
    id         BIGSERIAL PRIMARY KEY,
    email_key  TEXT COLLATE "C" NOT NULL,
    reason     TEXT NOT NULL CHECK (reason IN ('hard_bounce', 'spam_complaint', 'unsubscribe', 'manual')),
    at         TIMESTAMPTZ NOT NULL,
    UNIQUE (email_key, reason)
);
