-- Alerts: the bot speaks first when an invitation will not reach its person.
--
-- One row per (member, invitation, problem), whatever finds it and however often: the unique key is
-- what keeps a restart, a rescan or a second bot instance from alerting twice. `invitation_id` is 0
-- when the member has no sent invitation (a suppression found before any send). A row is `pending`
-- until it is posted (`posted`), no longer a problem when its post was due (`resolved`), or out of
-- attempts (`failed`); `claimed_until` is the lease of the process posting it right now.
CREATE TABLE IF NOT EXISTS alerts (
    id             INTEGER PRIMARY KEY,
    member_id      INTEGER NOT NULL REFERENCES members(id),
    invitation_id  INTEGER NOT NULL,
    problem        TEXT NOT NULL CHECK (problem IN ('hard_bounce', 'spam_complaint', 'suppressed', 'expired', 'deferred')),
    workspace_id   INTEGER NOT NULL REFERENCES workspaces(id),
    domain         TEXT NOT NULL,
    detected_at    TEXT NOT NULL,
    state          TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'posted', 'resolved', 'failed')),
    attempts       INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT,
    claimed_until  TEXT,
    posted_at      TEXT,
    message        TEXT,
    UNIQUE (member_id, invitation_id, problem)
);
CREATE INDEX IF NOT EXISTS alerts_state ON alerts (state, id);
CREATE INDEX IF NOT EXISTS alerts_domain ON alerts (workspace_id, domain, detected_at);

-- Where the scan stopped: the last delivery event and suppression looked at (and the ones that
-- existed when alerts were first enabled, which are history, never alerted), and the times up to
-- which expiries and long deferrals were looked for.
CREATE TABLE IF NOT EXISTS alert_scans (
    name              TEXT PRIMARY KEY,
    event_id          INTEGER NOT NULL,
    event_floor       INTEGER NOT NULL,
    suppression_id    INTEGER NOT NULL,
    suppression_floor INTEGER NOT NULL,
    expired_until     TEXT NOT NULL,
    deferred_until    TEXT NOT NULL
);

-- The time-based scans read invitations by expiry and deferrals by time.
CREATE INDEX IF NOT EXISTS invitations_expires ON invitations (expires_at);
CREATE INDEX IF NOT EXISTS delivery_events_event_at ON delivery_events (event, at);
