-- chat_buttons' times are written like every other table's (sqlx's RFC 3339 with an offset), not as
-- hand-formatted strings; rows written before keep their instant, now in the same spelling.
UPDATE chat_buttons SET offered_at = replace(offered_at, 'Z', '+00:00');
UPDATE chat_buttons SET used_at = replace(used_at, 'Z', '+00:00') WHERE used_at IS NOT NULL;
