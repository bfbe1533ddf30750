-- Jobs, per-user rate buckets and per-user preferences.
-- Applied by bot.store inside one transaction; PRAGMA user_version records the version.

CREATE TABLE jobs (
    id              INTEGER PRIMARY KEY,
    -- who asked, and where the answer goes (platform ids as text)
    platform        TEXT    NOT NULL,
    user_id         TEXT    NOT NULL,
    display_name    TEXT    NOT NULL,
    channel_id      TEXT    NOT NULL,
    server_id       TEXT,
    reply_to        TEXT,
    user_key        TEXT    NOT NULL,   -- platform:user_id, for limits and history
    server_key      TEXT,               -- platform:server_id, NULL in DMs and the console
    -- what to make
    prompt          TEXT    NOT NULL,
    style           TEXT,
    seed            INTEGER NOT NULL,
    steps           INTEGER NOT NULL,
    width           INTEGER NOT NULL,
    height          INTEGER NOT NULL,
    cfg             REAL    NOT NULL DEFAULT 1.0,
    negative_prompt TEXT,
    -- what happened
    state           TEXT    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    created_at      REAL    NOT NULL,
    started_at      REAL,
    finished_at     REAL,
    image_path      TEXT,               -- relative to the data dir
    timings         TEXT,               -- JSON of bot.domain.Timings
    error           TEXT,
    posted_message_id TEXT,
    parent_job_id   INTEGER REFERENCES jobs (id)
);

CREATE INDEX jobs_by_state ON jobs (state, id);
CREATE INDEX jobs_by_user ON jobs (user_key, id);
CREATE INDEX jobs_by_server ON jobs (server_key, id);

CREATE TABLE rate_buckets (
    user_key   TEXT PRIMARY KEY,
    tokens     REAL NOT NULL,
    updated_at REAL NOT NULL
) WITHOUT ROWID;

CREATE TABLE user_prefs (
    user_key      TEXT PRIMARY KEY,
    default_style TEXT
) WITHOUT ROWID;
