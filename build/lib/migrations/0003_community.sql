-- Community (issue 6): per-server settings, shares to a showcase with votes, user privacy,
-- per-server blocks and an audit log of admin actions.

CREATE TABLE server_settings (
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
    language             TEXT NOT NULL DEFAULT 'en'
) WITHOUT ROWID;

CREATE TABLE shares (
    id          INTEGER PRIMARY KEY,
    job_id      INTEGER NOT NULL UNIQUE REFERENCES jobs (id),
    platform    TEXT NOT NULL,
    server_key  TEXT NOT NULL,
    user_key    TEXT NOT NULL,   -- the image's owner
    channel_id  TEXT NOT NULL,   -- the showcase channel it was posted to
    message_id  TEXT,            -- set once the adapter posted it
    shared_at   REAL NOT NULL
);

CREATE INDEX shares_by_server ON shares (server_key, shared_at);
CREATE INDEX shares_by_user ON shares (user_key);
CREATE INDEX shares_by_message ON shares (platform, message_id);

CREATE TABLE votes (
    share_id  INTEGER NOT NULL REFERENCES shares (id) ON DELETE CASCADE,
    voter_key TEXT NOT NULL,
    value     INTEGER NOT NULL CHECK (value IN (-1, 1)),
    voted_at  REAL NOT NULL,
    PRIMARY KEY (share_id, voter_key)
) WITHOUT ROWID;

CREATE INDEX votes_by_voter ON votes (voter_key);

CREATE TABLE user_privacy (
    user_key      TEXT PRIMARY KEY,
    share_opt_out INTEGER NOT NULL DEFAULT 0,
    hide_details  INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

-- Blocks outlive /forget (a blocked user must not escape by forgetting), so the user is kept
-- only as a SHA-256 digest of server_key and user_key: no readable id remains.
CREATE TABLE blocked_users (
    server_key TEXT NOT NULL,
    user_hash  TEXT NOT NULL,
    blocked_at REAL NOT NULL,
    PRIMARY KEY (server_key, user_hash)
) WITHOUT ROWID;

CREATE TABLE audit_log (
    id            INTEGER PRIMARY KEY,
    at            REAL NOT NULL,
    server_key    TEXT NOT NULL,
    actor_user_id TEXT NOT NULL,
    action        TEXT NOT NULL,
    target        TEXT NOT NULL,
    detail        TEXT NOT NULL DEFAULT ''
);

CREATE INDEX audit_by_server ON audit_log (server_key, id);
