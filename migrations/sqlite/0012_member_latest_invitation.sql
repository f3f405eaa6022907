-- The workspace report reads one index, not several per member.
--
-- Each member row carries its latest sent invitation (by sent_at, then id: the one a check reads)
-- and that invitation's outcome so far: NULL when sent with no word yet, 'delivered', 'deferred'
-- (deferred or a soft bounce: the latest of these three events by (at, id) decides between them),
-- 'bounced' (a hard bounce, whatever else happened) or 'spam' (a spam complaint and no hard bounce).
-- The expiry and the staleness depend on the time of the report, so the dates are kept, not a verdict.
--
-- Triggers keep the columns right for every writer (the outbox, the product's calls, sync, import,
-- push, fixtures, webhooks and the events attached to an invitation later): each write recomputes
-- the affected member from the invitations and events, with the same rules as the check.
ALTER TABLE members ADD COLUMN latest_invitation_id INTEGER;
ALTER TABLE members ADD COLUMN latest_sent_at TEXT;
ALTER TABLE members ADD COLUMN latest_expires_at TEXT;
ALTER TABLE members ADD COLUMN latest_outcome TEXT
    CHECK (latest_outcome IN ('delivered', 'deferred', 'bounced', 'spam'));

-- A member's latest sent invitation and its outcome, from scratch.
CREATE TRIGGER IF NOT EXISTS invitations_latest_insert AFTER INSERT ON invitations
WHEN NEW.send_state = 'sent'
BEGIN
    UPDATE members SET (latest_invitation_id, latest_sent_at, latest_expires_at, latest_outcome) = (
        SELECT l.id, l.sent_at, l.expires_at,
               CASE WHEN EXISTS (SELECT 1 FROM delivery_events e WHERE e.invitation_id = l.id
                                   AND e.event = 'bounced' AND e.bounce_kind = 'hard') THEN 'bounced'
                    WHEN EXISTS (SELECT 1 FROM delivery_events e WHERE e.invitation_id = l.id
                                   AND e.event = 'spam_complaint') THEN 'spam'
                    ELSE (SELECT CASE WHEN e.event = 'delivered' THEN 'delivered' ELSE 'deferred' END
                          FROM delivery_events e WHERE e.invitation_id = l.id
                            AND (e.event IN ('delivered', 'deferred')
                                 OR (e.event = 'bounced' AND e.bounce_kind = 'soft'))
                          ORDER BY e.at DESC, e.id DESC LIMIT 1) END
        FROM invitations l WHERE l.member_id = members.id AND l.send_state = 'sent'
        ORDER BY l.sent_at DESC, l.id DESC LIMIT 1)
    WHERE id = NEW.member_id;
END;

CREATE TRIGGER IF NOT EXISTS invitations_latest_update
AFTER UPDATE OF member_id, send_state, sent_at, expires_at ON invitations
WHEN (OLD.send_state = 'sent' OR NEW.send_state = 'sent')
 AND (OLD.member_id IS NOT NEW.member_id OR OLD.send_state IS NOT NEW.send_state
      OR OLD.sent_at IS NOT NEW.sent_at OR OLD.expires_at IS NOT NEW.expires_at)
BEGIN
    UPDATE members SET (latest_invitation_id, latest_sent_at, latest_expires_at, latest_outcome) = (
        SELECT l.id, l.sent_at, l.expires_at,
               CASE WHEN EXISTS (SELECT 1 FROM delivery_events e WHERE e.invitation_id = l.id
                                   AND e.event = 'bounced' AND e.bounce_kind = 'hard') THEN 'bounced'
                    WHEN EXISTS (SELECT 1 FROM delivery_events e WHERE e.invitation_id = l.id
                                   AND e.event = 'spam_complaint') THEN 'spam'
                    ELSE (SELECT CASE WHEN e.event = 'delivered' THEN 'delivered' ELSE 'deferred' END
                          FROM delivery_events e WHERE e.invitation_id = l.id
                            AND (e.event IN ('delivered', 'deferred')
                                 OR (e.event = 'bounced' AND e.bounce_kind = 'soft'))
                          ORDER BY e.at DESC, e.id DESC LIMIT 1) END
        FROM invitations l WHERE l.member_id = members.id AND l.send_state = 'sent'
        ORDER BY l.sent_at DESC, l.id DESC LIMIT 1)
    WHERE id IN (NEW.member_id, OLD.member_id);
END;

CREATE TRIGGER IF NOT EXISTS invitations_latest_delete AFTER DELETE ON invitations
WHEN OLD.send_state = 'sent'
BEGIN
    UPDATE members SET (latest_invitation_id, latest_sent_at, latest_expires_at, latest_outcome) = (
        SELECT l.id, l.sent_at, l.expires_at,
               CASE WHEN EXISTS (SELECT 1 FROM delivery_events e WHERE e.invitation_id = l.id
                                   AND e.event = 'bounced' AND e.bounce_kind = 'hard') THEN 'bounced'
                    WHEN EXISTS (SELECT 1 FROM delivery_events e WHERE e.invitation_id = l.id
                                   AND e.event = 'spam_complaint') THEN 'spam'
                    ELSE (SELECT CASE WHEN e.event = 'delivered' THEN 'delivered' ELSE 'deferred' END
                          FROM delivery_events e WHERE e.invitation_id = l.id
                            AND (e.event IN ('delivered', 'deferred')
                                 OR (e.event = 'bounced' AND e.bounce_kind = 'soft'))
                          ORDER BY e.at DESC, e.id DESC LIMIT 1) END
        FROM invitations l WHERE l.member_id = members.id AND l.send_state = 'sent'
        ORDER BY l.sent_at DESC, l.id DESC LIMIT 1)
    WHERE id = OLD.member_id;
END;

-- An event changes only the outcome, and only when its invitation is its member's latest.
CREATE TRIGGER IF NOT EXISTS delivery_events_latest_insert AFTER INSERT ON delivery_events
WHEN NEW.invitation_id IS NOT NULL
BEGIN
    UPDATE members SET latest_outcome =
        CASE WHEN EXISTS (SELECT 1 FROM delivery_events e WHERE e.invitation_id = members.latest_invitation_id
                            AND e.event = 'bounced' AND e.bounce_kind = 'hard') THEN 'bounced'
             WHEN EXISTS (SELECT 1 FROM delivery_events e WHERE e.invitation_id = members.latest_invitation_id
                            AND e.event = 'spam_complaint') THEN 'spam'
             ELSE (SELECT CASE WHEN e.event = 'delivered' THEN 'delivered' ELSE 'deferred' END
                   FROM delivery_events e WHERE e.invitation_id = members.latest_invitation_id
                     AND (e.event IN ('delivered', 'deferred')
                          OR (e.event = 'bounced' AND e.bounce_kind = 'soft'))
                   ORDER BY e.at DESC, e.id DESC LIMIT 1) END
    WHERE id = (SELECT member_id FROM invitations WHERE id = NEW.invitation_id)
      AND latest_invitation_id = NEW.invitation_id;
END;

-- `attach_early_events` sets the invitation of events that arrived before it was known.
CREATE TRIGGER IF NOT EXISTS delivery_events_latest_update
AFTER UPDATE OF invitation_id, event, bounce_kind, at ON delivery_events
WHEN (OLD.invitation_id IS NOT NULL OR NEW.invitation_id IS NOT NULL)
 AND (OLD.invitation_id IS NOT NEW.invitation_id OR OLD.event IS NOT NEW.event
      OR OLD.bounce_kind IS NOT NEW.bounce_kind OR OLD.at IS NOT NEW.at)
BEGIN
    UPDATE members SET latest_outcome =
        CASE WHEN EXISTS (SELECT 1 FROM delivery_events e WHERE e.invitation_id = members.latest_invitation_id
                            AND e.event = 'bounced' AND e.bounce_kind = 'hard') THEN 'bounced'
             WHEN EXISTS (SELECT 1 FROM delivery_events e WHERE e.invitation_id = members.latest_invitation_id
                            AND e.event = 'spam_complaint') THEN 'spam'
             ELSE (SELECT CASE WHEN e.event = 'delivered' THEN 'delivered' ELSE 'deferred' END
                   FROM delivery_events e WHERE e.invitation_id = members.latest_invitation_id
                     AND (e.event IN ('delivered', 'deferred')
                          OR (e.event = 'bounced' AND e.bounce_kind = 'soft'))
                   ORDER BY e.at DESC, e.id DESC LIMIT 1) END
    WHERE id IN (SELECT member_id FROM invitations WHERE id IN (NEW.invitation_id, OLD.invitation_id))
      AND latest_invitation_id IN (NEW.invitation_id, OLD.invitation_id);
END;

CREATE TRIGGER IF NOT EXISTS delivery_events_latest_delete AFTER DELETE ON delivery_events
WHEN OLD.invitation_id IS NOT NULL
BEGIN
    UPDATE members SET latest_outcome =
        CASE WHEN EXISTS (SELECT 1 FROM delivery_events e WHERE e.invitation_id = members.latest_invitation_id
                            AND e.event = 'bounced' AND e.bounce_kind = 'hard') THEN 'bounced'
             WHEN EXISTS (SELECT 1 FROM delivery_events e WHERE e.invitation_id = members.latest_invitation_id
                            AND e.event = 'spam_complaint') THEN 'spam'
             ELSE (SELECT CASE WHEN e.event = 'delivered' THEN 'delivered' ELSE 'deferred' END
                   FROM delivery_events e WHERE e.invitation_id = members.latest_invitation_id
                     AND (e.event IN ('delivered', 'deferred')
                          OR (e.event = 'bounced' AND e.bounce_kind = 'soft'))
                   ORDER BY e.at DESC, e.id DESC LIMIT 1) END
    WHERE id = (SELECT member_id FROM invitations WHERE id = OLD.invitation_id)
      AND latest_invitation_id = OLD.invitation_id;
END;

-- The rows written before this migration.
UPDATE members SET (latest_invitation_id, latest_sent_at, latest_expires_at, latest_outcome) = (
    SELECT l.id, l.sent_at, l.expires_at,
           CASE WHEN EXISTS (SELECT 1 FROM delivery_events e WHERE e.invitation_id = l.id
                               AND e.event = 'bounced' AND e.bounce_kind = 'hard') THEN 'bounced'
                WHEN EXISTS (SELECT 1 FROM delivery_events e WHERE e.invitation_id = l.id
                               AND e.event = 'spam_complaint') THEN 'spam'
                ELSE (SELECT CASE WHEN e.event = 'delivered' THEN 'delivered' ELSE 'deferred' END
                      FROM delivery_events e WHERE e.invitation_id = l.id
                        AND (e.event IN ('delivered', 'deferred')
                             OR (e.event = 'bounced' AND e.bounce_kind = 'soft'))
                      ORDER BY e.at DESC, e.id DESC LIMIT 1) END
    FROM invitations l WHERE l.member_id = members.id AND l.send_state = 'sent'
    ORDER BY l.sent_at DESC, l.id DESC LIMIT 1)
WHERE EXISTS (SELECT 1 FROM invitations l WHERE l.member_id = members.id AND l.send_state = 'sent');

-- The report's index: the invited members of a workspace with everything their verdict needs
-- (the rowid, their id, comes with every SQLite index). Active and deactivated members are still
-- counted from `members_workspace_status`. Status and removal are in the key although the partial
-- WHERE fixes them: the planner then matches as many equalities here as in
-- `members_workspace_status`, and prefers this one because it covers the query.
CREATE INDEX IF NOT EXISTS members_report
    ON members (workspace_id, status, removed_at, latest_outcome, latest_expires_at, latest_sent_at,
                 domain_key, email_key)
    WHERE status = 'invited' AND removed_at IS NULL;
