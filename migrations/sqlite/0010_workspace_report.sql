-- The workspace report (`/invite-report`, `invite-bot report`) and its bulk resend.
--
-- The report counts every member of a workspace by the verdict a check would give, in one
-- aggregate statement. These indexes make each step of it read an index only: the members of one
-- workspace by status (active and deactivated members are counted without reading any other
-- table), the latest sent invitation of each invited member, and that invitation's events.
CREATE INDEX IF NOT EXISTS members_workspace_status
    ON members (workspace_id, status, removed_at, domain_key, email_key);
CREATE INDEX IF NOT EXISTS invitations_member_latest
    ON invitations (member_id, send_state, sent_at, id, expires_at);
-- Replaces (invitation_id, at): the same prefix, then the id (the latest event is the last by
-- (at, id)), and the event's kind beside them.
DROP INDEX IF EXISTS delivery_events_invitation;
CREATE INDEX IF NOT EXISTS delivery_events_invitation
    ON delivery_events (invitation_id, at, id, event, bounce_kind);

-- One row per "Resend all eligible" offer. Its reference is the opaque token in the buttons'
-- custom ids; the press that confirms it moves it from 'offered' to 'running' once, and at most
-- one run per workspace is 'running' at a time (the partial unique index), whichever replica or
-- press asks. A running run renews `lease_until`; a run whose lease lapsed (its process stopped)
-- is marked 'interrupted' when the next run of its workspace starts.
CREATE TABLE IF NOT EXISTS bulk_resends (
    id           INTEGER PRIMARY KEY,
    reference    TEXT NOT NULL UNIQUE,
    workspace    TEXT NOT NULL,
    offered_to   TEXT NOT NULL,
    offered_at   TEXT NOT NULL,
    eligible     INTEGER NOT NULL,
    state        TEXT NOT NULL CHECK (state IN ('offered', 'running', 'finished', 'interrupted')),
    started_by   TEXT,
    started_at   TEXT,
    lease_until  TEXT,
    finished_at  TEXT,
    sent         INTEGER NOT NULL DEFAULT 0,
    skipped      INTEGER NOT NULL DEFAULT 0,
    failed       INTEGER NOT NULL DEFAULT 0,
    summary      TEXT                      -- JSON: the run's summary, once finished
);
CREATE UNIQUE INDEX IF NOT EXISTS bulk_resends_one_running ON bulk_resends (workspace)
    WHERE state = 'running';
CREATE INDEX IF NOT EXISTS bulk_resends_offered_at ON bulk_resends (offered_at);
