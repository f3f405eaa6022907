-- The product's own data flowing in (sync from its database, import of an export, the push API).
--
-- Each member remembers who wrote it last (`source`), the product's own `updated_at` for it
-- (`source_updated_at`: a row no newer than this changes nothing, so every way in is idempotent), when
-- the bot last wrote or confirmed it (`refreshed_at`: the age a card shows) and, once the product
-- deleted it or a full sync no longer returns it, when it left the bot's view (`removed_at`: the row
-- stays, so the audit log keeps naming it). `seen_run` marks the rows a full sync has returned.
ALTER TABLE members ADD COLUMN source TEXT NOT NULL DEFAULT 'fixtures';
ALTER TABLE members ADD COLUMN source_updated_at TEXT;
ALTER TABLE members ADD COLUMN refreshed_at TEXT;
ALTER TABLE members ADD COLUMN removed_at TEXT;
ALTER TABLE members ADD COLUMN seen_run INTEGER;
CREATE INDEX IF NOT EXISTS members_source_run ON members (source, seen_run);

-- Invitations the product sent itself: `source_key` (workspace, address, sent_at) identifies one
-- across syncs and pushes, whether or not its Message-ID is known yet.
ALTER TABLE invitations ADD COLUMN source TEXT;
ALTER TABLE invitations ADD COLUMN source_key TEXT;
ALTER TABLE invitations ADD COLUMN source_updated_at TEXT;
CREATE UNIQUE INDEX IF NOT EXISTS invitations_source_key ON invitations (source_key);

-- One row per way in: the sync's watermark (the largest `updated_at` applied, and the key that
-- breaks ties between equal timestamps), its runs, and when it last succeeded or failed.
CREATE TABLE IF NOT EXISTS data_sources (
    name             TEXT PRIMARY KEY,
    watermark_at     TEXT,
    watermark_key    TEXT,
    run              INTEGER NOT NULL DEFAULT 0,
    last_attempt_at  TEXT,
    last_success_at  TEXT,
    last_error       TEXT,
    rows_applied     INTEGER NOT NULL DEFAULT 0,
    errors           INTEGER NOT NULL DEFAULT 0
);
