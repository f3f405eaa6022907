-- The server-side records behind chat buttons. A button's custom_id carries only `reference`, an
-- opaque random token; everything the press acts on is read from here, so nothing in a button is trusted.
CREATE TABLE IF NOT EXISTS chat_buttons (
    reference    TEXT PRIMARY KEY,
    action       TEXT NOT NULL CHECK (action IN ('check', 'resend_invite', 'issue_activation_code', 'escalate')),
    email        TEXT NOT NULL,           -- the normalised address the button acts on
    workspace    TEXT,                    -- its workspace slug; NULL: every workspace (check buttons only)
    member_id    INTEGER,                  -- the member the check found, when there was one
    offered_to   TEXT NOT NULL,           -- who ran the check that offered it
    offered_at   TEXT NOT NULL,           -- RFC 3339 UTC; older than the configured age: refused
    used_at      TEXT,                    -- set once, atomically, by the press that performs it
    used_by      TEXT,
    outcome      TEXT,                    -- what the action did, shown on the updated message
    message      TEXT                     -- the platform's id of the message the button is on
);
CREATE INDEX IF NOT EXISTS chat_buttons_offered_at ON chat_buttons (offered_at);
