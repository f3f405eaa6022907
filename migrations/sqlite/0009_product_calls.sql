-- Actions carried out by the product's own API ([actions] backend = "product").
--
-- One row per action request that calls the product, written in the same transaction as the request
-- and before the first try: it holds the idempotency key that goes with every try (as `webhook-id`),
-- so a retry, a second press of the same button or another replica asks with the same key and the
-- product does it once. A caller holds the row under a lease while it tries; a row whose outcome is
-- unknown (no answer on any try) is taken up again by the next press of the same button.
-- Never a code, a link or a token: the code the product returns is shown once and kept nowhere.
CREATE TABLE IF NOT EXISTS product_calls (
    id                 INTEGER PRIMARY KEY,
    action_request_id  INTEGER NOT NULL UNIQUE REFERENCES action_requests(id),
    idempotency_key    TEXT NOT NULL UNIQUE,
    action             TEXT NOT NULL CHECK (action IN ('resend_invite', 'issue_activation_code')),
    state              TEXT NOT NULL CHECK (state IN ('calling', 'done', 'unknown', 'failed')),
    attempts           INTEGER NOT NULL DEFAULT 0,
    claimed_by         TEXT,
    lease_until        TEXT,
    last_error         TEXT,
    created_at         TEXT NOT NULL,
    finished_at        TEXT
);
