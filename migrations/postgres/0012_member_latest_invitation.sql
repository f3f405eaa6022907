-- The workspace report reads one index, not several per member.
--
-- Each member row carries its latest sent invitation (by sent_at, then id: the one a check reads)
-- and that invitation's outcome so far: NULL when sent with no word yet, 'delivered', 'deferred'
-- (deferred or a soft bounce: the latest of these three events by (at, id) decides between them),
-- 'bounced' (a hard bounce, whatever else happened) or 'spam' (a spam complaint and no hard bounce).
-- The expiry and the staleness depend on the time of the report, so the dates are kept, not a verdict.
--
-- Triggers keep the columns right for every writer (the outbox, the product's calls, sync, import,
-- push, fixtures, webhooks and the events attached to an invitation later). They run once per
-- statement over its transition tables, so a statement that writes many rows recomputes its
-- members in one set-based UPDATE, and a member whose columns come out the same is not rewritten.
ALTER TABLE members ADD COLUMN IF NOT EXISTS latest_invitation_id BIGINT;
ALTER TABLE members ADD COLUMN IF NOT EXISTS latest_sent_at TIMESTAMPTZ;
ALTER TABLE members ADD COLUMN IF NOT EXISTS latest_expires_at TIMESTAMPTZ;
ALTER TABLE members ADD COLUMN IF NOT EXISTS latest_outcome TEXT
    CHECK (latest_outcome IN ('delivered', 'deferred', 'bounced', 'spam'));

-- The functions are PL/pgSQL, not SQL, and the outcome is written out in each rather than called:
-- PL/pgSQL keeps a statement's plan for the session, while a SQL function (and a SQL function
-- with subqueries is never inlined) is planned again at every call, which made each single-row
-- write of an invitation or an event ten times slower. The kept plan is the generic one, in every
-- session (`auto` planned each call afresh: 0.3 ms more per write), and it is made without
-- sequential scans: it is made at the first write of a session, perhaps into an empty table, and
-- a plan that scanned the events of a then-empty table once per member took minutes (and past
-- any deadline over a million) once the table was full. Every step has its index (bitmap scans are
-- off too: with sequential scans off, they made each single-row write three times slower).

-- Members `member_ids`' latest sent invitation and its outcome (as the check decides it: a hard
-- bounce, else a spam complaint, else the latest of delivered / deferred / soft bounce by (at, id),
-- in one pass over the invitation's events whose only condition is the invitation: no plan can
-- take another index of the events), from scratch; rows that come out the same are left alone.
-- (`OFFSET 0` keeps the subquery whole,
-- so each outcome is worked out once, not once for the comparison and again for the SET.)
CREATE OR REPLACE FUNCTION members_refresh_latest(member_ids BIGINT[]) RETURNS VOID
LANGUAGE plpgsql SET enable_seqscan = off SET enable_bitmapscan = off
    SET plan_cache_mode = force_generic_plan AS $$
BEGIN
    UPDATE members m SET latest_invitation_id = x.id, latest_sent_at = x.sent_at,
        latest_expires_at = x.expires_at, latest_outcome = x.outcome
    FROM (SELECT t.member_id, l.id, l.sent_at, l.expires_at,
                 (SELECT CASE WHEN bool_or(e.event = 'bounced' AND e.bounce_kind = 'hard') THEN 'bounced'
                              WHEN bool_or(e.event = 'spam_complaint') THEN 'spam'
                              ELSE (array_agg(CASE WHEN e.event = 'delivered' THEN 'delivered'
                                                   ELSE 'deferred' END
                                              ORDER BY e.at DESC, e.id DESC)
                                    FILTER (WHERE e.event IN ('delivered', 'deferred')
                                            OR (e.event = 'bounced' AND e.bounce_kind = 'soft')))[1]
                         END
                  FROM delivery_events e WHERE e.invitation_id = l.id) AS outcome
          FROM (SELECT DISTINCT u AS member_id FROM unnest(member_ids) AS u) t
          LEFT JOIN LATERAL (
              SELECT l.id, l.sent_at, l.expires_at FROM invitations l
              WHERE l.member_id = t.member_id AND l.send_state = 'sent'
              ORDER BY l.sent_at DESC, l.id DESC LIMIT 1) l ON TRUE
          OFFSET 0) x
    WHERE m.id = x.member_id
      AND (m.latest_invitation_id, m.latest_sent_at, m.latest_expires_at, m.latest_outcome)
          IS DISTINCT FROM (x.id, x.sent_at, x.expires_at, x.outcome);
END
$$;

-- The outcome of the members whose latest invitation is one of `invitation_ids`.
CREATE OR REPLACE FUNCTION members_refresh_outcome(invitation_ids BIGINT[]) RETURNS VOID
LANGUAGE plpgsql SET enable_seqscan = off SET enable_bitmapscan = off
    SET plan_cache_mode = force_generic_plan AS $$
BEGIN
    UPDATE members m SET latest_outcome = x.outcome
    FROM (SELECT i.member_id,
                 (SELECT CASE WHEN bool_or(e.event = 'bounced' AND e.bounce_kind = 'hard') THEN 'bounced'
                              WHEN bool_or(e.event = 'spam_complaint') THEN 'spam'
                              ELSE (array_agg(CASE WHEN e.event = 'delivered' THEN 'delivered'
                                                   ELSE 'deferred' END
                                              ORDER BY e.at DESC, e.id DESC)
                                    FILTER (WHERE e.event IN ('delivered', 'deferred')
                                            OR (e.event = 'bounced' AND e.bounce_kind = 'soft')))[1]
                         END
                  FROM delivery_events e WHERE e.invitation_id = i.id) AS outcome
          FROM invitations i JOIN members l ON l.id = i.member_id AND l.latest_invitation_id = i.id
          WHERE i.id IN (SELECT DISTINCT u FROM unnest(invitation_ids) AS u)
          OFFSET 0) x
    WHERE m.id = x.member_id AND m.latest_outcome IS DISTINCT FROM x.outcome;
END
$$;

CREATE OR REPLACE FUNCTION invitations_refresh_latest() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM members_refresh_latest(ARRAY(
            SELECT n.member_id FROM new_rows n WHERE n.send_state = 'sent'));
    ELSIF TG_OP = 'UPDATE' THEN
        PERFORM members_refresh_latest(ARRAY(
            SELECT unnest(ARRAY[o.member_id, n.member_id])
            FROM old_rows o JOIN new_rows n ON n.id = o.id
            WHERE (o.send_state = 'sent' OR n.send_state = 'sent')
              AND (o.member_id, o.send_state, o.sent_at, o.expires_at)
                  IS DISTINCT FROM (n.member_id, n.send_state, n.sent_at, n.expires_at)));
    ELSE
        PERFORM members_refresh_latest(ARRAY(
            SELECT o.member_id FROM old_rows o WHERE o.send_state = 'sent'));
    END IF;
    RETURN NULL;
END
$$;

-- `attach_early_events` sets the invitation of events that arrived before it was known.
CREATE OR REPLACE FUNCTION delivery_events_refresh_outcome() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM members_refresh_outcome(ARRAY(
            SELECT n.invitation_id FROM new_rows n WHERE n.invitation_id IS NOT NULL));
    ELSIF TG_OP = 'UPDATE' THEN
        PERFORM members_refresh_outcome(ARRAY(
            SELECT unnest(ARRAY[o.invitation_id, n.invitation_id])
            FROM old_rows o JOIN new_rows n ON n.id = o.id
            WHERE (o.invitation_id, o.event, o.bounce_kind, o.at)
                  IS DISTINCT FROM (n.invitation_id, n.event, n.bounce_kind, n.at)));
    ELSE
        PERFORM members_refresh_outcome(ARRAY(
            SELECT o.invitation_id FROM old_rows o WHERE o.invitation_id IS NOT NULL));
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER invitations_latest_insert AFTER INSERT ON invitations
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION invitations_refresh_latest();
CREATE TRIGGER invitations_latest_update AFTER UPDATE ON invitations
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION invitations_refresh_latest();
CREATE TRIGGER invitations_latest_delete AFTER DELETE ON invitations
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION invitations_refresh_latest();

CREATE TRIGGER delivery_events_latest_insert AFTER INSERT ON delivery_events
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION delivery_events_refresh_outcome();
CREATE TRIGGER delivery_events_latest_update AFTER UPDATE ON delivery_events
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION delivery_events_refresh_outcome();
CREATE TRIGGER delivery_events_latest_delete AFTER DELETE ON delivery_events
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION delivery_events_refresh_outcome();

-- The rows written before this migration.
SELECT members_refresh_latest(ARRAY(
    SELECT DISTINCT member_id FROM invitations WHERE send_state = 'sent'));

-- The report's index: the invited members of a workspace with everything their verdict needs.
-- Active and deactivated members are still counted from `members_workspace_status`. (A count is
-- index-only where the visibility map says the pages are all-visible: autovacuum's work.)
CREATE INDEX IF NOT EXISTS members_report
    ON members (workspace_id, status, removed_at, latest_outcome, latest_expires_at, latest_sent_at,
                 domain_key, email_key)
    INCLUDE (id)
    WHERE status = 'invited' AND removed_at IS NULL;
