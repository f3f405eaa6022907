-- Provider webhooks: Mailgun's signed tokens are remembered so a captured request cannot be replayed.
-- Rows older than the signature's maximum age are deleted as new tokens arrive.

CREATE TABLE IF NOT EXISTS webhook_tokens (
    provider  TEXT NOT NULL,
    token     TEXT NOT NULL,
    seen_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (provider, token)
);
CREATE INDEX IF NOT EXISTS webhook_tokens_seen ON webhook_tokens (seen_at);

