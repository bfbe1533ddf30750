-- Reply language (issue 16): a server that never chose a language stores NULL, and its users
-- read replies in their own client's language. Servers with a row keep the language they had.
-- SQLite cannot drop NOT NULL in place: the table is copied.

CREATE TABLE server_settings_new (
    server_key           TEXT PRIMARY KEY,   -- platform:server_id
    platform             TEXT NOT NULL,
    server_id            TEXT NOT NULL,
    default_style        TEXT,
    allowed_styles       TEXT NOT NULL DEFAULT '[]',   -- JSON list; empty = every style
    rate_per_minute      REAL,                          -- NULL = the operator's
    rate_burst           INTEGER,
    max_pending_per_user INTEGER,
    showcase_channel_id  TEXT,
    banned_words         TEXT NOT NULL DEFAULT '[]',   -- JSON list of folded words
    allow_external_share INTEGER NOT NULL DEFAULT 1,
    language             TEXT                           -- NULL = each user's own
) WITHOUT ROWID;

INSERT INTO server_settings_new SELECT * FROM server_settings;
DROP TABLE server_settings;
ALTER TABLE server_settings_new RENAME TO server_settings;
