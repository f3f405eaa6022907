-- The workspace report (`/invite-report`, `invite-bot report`) and its bulk resend.
--
-- The report counts every member of a workspace by the verdict a check would give, in one
-- aggregate statement. These indexes make each step of it read an index only: the members of one
-- workspace by status (active and deactivated members are counted without reading any other
-- table), the latest sent invitation of each invited member, and that invitation's events.
CREATE INDEX IF NOT EXISTS members_workspace_status
    ON members (workspace_id, status, removed_at, domain_key, email_key) INCLUDE (id);
CREATE INDEX IF NOT EXISTS invitations_member_latest
    ON invitations (member_id, send_state, sent_at, id) INCLUDE (expires_at);
-- Replaces (invitation_id, at): the same prefix, and the event's kind beside it.
DROP INDEX IF EXISTS delivery_events_invitation;
CREATE INDEX IF NOT EXISTS delivery_events_invitation
    ON delivery_events (invitation_id, at, id) INCLUDE (event, bounce_kind);

-- One row per "Resend all eligible" offer. Its reference is the opaque token in the buttons'
-- custom ids; the press that confirms it moves it from 'offered' to 'running' once, and at most
-- one run per workspace is 'running' at a time (the partial unique index), whichever replica or
-- press asks. A running run renews `lease_until`; a run whose lease lapsed (its process stopped)
-- is marked 'interrupted' when the next run of its workspace starts.
CREATE TABLE IF NOT EXISTS bulk_resends (
    id           BIGSERIAL PRIMARY KEY,
    reference    TEXT NOT NULL UNIQUE,
    workspace    TEXT NOT NULL,
    offered_to   TEXT NOT NULL,
    offered_at   TIMESTAMPTZ NOT NULL,
    eligible     BIGINT NOT NULL,
    state        TEXT NOT NULL CHECK (state IN ('offered', 'running', 'finished', 'interrupted')),
    started_by   TEXT,
    started_at   TIMESTAMPTZ,
    lease_until  TIMESTAMPTZ,
    finished_at  TIMESTAMPTZ,
    sent         BIGINT NOT NULL DEFAULT 0,
    skipped      BIGINT NOT NULL DEFAULT 0,
    failed       BIGINT NOT NULL DEFAULT 0,
    summary      TEXT                      -- JSON: the run's summary, once finished
);
CREATE UNIQUE INDEX IF NOT EXISTS bulk_resends_one_running ON bulk_resends (workspace)
    WHERE state = 'running';
CREATE INDEX IF NOT EXISTS bulk_resends_offered_at ON bulk_resends (offered_at);
