-- Message ids in one form: trimmed, without the angle brackets a header carries. Resends stored
-- `<id@invite-bot>` while webhooks looked up `id@invite-bot`, so their events attached to nothing.
-- A row whose canonical form another row already holds is left as it is (the unique index forbids
-- two); every other id is rewritten, and events that can now find their invitation are attached.
-- The provider's own id for a sent email (from the SMTP server's acceptance) is kept beside it.

ALTER TABLE invitations ADD COLUMN IF NOT EXISTS provider_message_id TEXT;
CREATE INDEX IF NOT EXISTS invitations_provider_message_id ON invitations (provider_message_id);

UPDATE invitations
SET message_id = CASE WHEN trim(message_id) LIKE '<%>'
                      THEN trim(substr(trim(message_id), 2, length(trim(message_id)) - 2))
                      ELSE trim(message_id) END
WHERE message_id IS NOT NULL
  AND message_id <> CASE WHEN trim(message_id) LIKE '<%>'
                         THEN trim(substr(trim(message_id), 2, length(trim(message_id)) - 2))
                         ELSE trim(message_id) END
  AND NOT EXISTS (
      SELECT 1 FROM invitations other
      WHERE other.message_id = CASE WHEN trim(invitations.message_id) LIKE '<%>'
          THEN trim(substr(trim(invitations.message_id), 2, length(trim(invitations.message_id)) - 2))
          ELSE trim(invitations.message_id) END
  );

UPDATE delivery_events
SET message_id = CASE WHEN trim(message_id) LIKE '<%>'
                      THEN trim(substr(trim(message_id), 2, length(trim(message_id)) - 2))
                      ELSE trim(message_id) END
WHERE message_id IS NOT NULL;

UPDATE delivery_events
SET invitation_id = (SELECT i.id FROM invitations i WHERE i.message_id = delivery_events.message_id)
WHERE invitation_id IS NULL
  AND EXISTS (SELECT 1 FROM invitations i WHERE i.message_id = delivery_events.message_id);
