-- Sends that tell the truth after a crash or a failed commit.
--
-- An outbox row being sent names its sender (`claimed_by`, one id per running process) and holds a
-- short lease (`lease_until`) that the sender renews while the SMTP conversation lasts: a row whose
-- lease lapsed was left by a process that is gone, and is taken over within seconds instead of after
-- five minutes. A live sender renews its lease, so its row is never taken.
ALTER TABLE outbox ADD COLUMN claimed_by TEXT;
ALTER TABLE outbox ADD COLUMN lease_until TEXT;
-- Rows claimed before leases existed keep the five minutes they were promised.
UPDATE outbox SET lease_until = strftime('%Y-%m-%dT%H:%M:%S', claimed_at, '+5 minutes') || '+00:00'
WHERE state = 'sending' AND claimed_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS outbox_lease ON outbox (state, lease_until);
CREATE INDEX IF NOT EXISTS outbox_request ON outbox (action_request_id);

-- Every token an invitation's emails carried, as SHA-256 hashes (a retry mints a new one without
-- killing the one before): whichever of the emails arrives, its link works, until the invitation is
-- used, revoked or expires.
CREATE TABLE IF NOT EXISTS invitation_tokens (
    id             INTEGER PRIMARY KEY,
    invitation_id  INTEGER NOT NULL REFERENCES invitations(id),
    token_hash     TEXT NOT NULL UNIQUE,
    minted_at      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS invitation_tokens_invitation ON invitation_tokens (invitation_id);
