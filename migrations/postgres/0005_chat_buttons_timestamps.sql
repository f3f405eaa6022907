-- chat_buttons' times are timestamps like every other table's, not RFC 3339 text.
ALTER TABLE chat_buttons
    ALTER COLUMN offered_at TYPE TIMESTAMPTZ USING offered_at::timestamptz,
    ALTER COLUMN used_at TYPE TIMESTAMPTZ USING used_at::timestamptz;
