-- Where a result was posted (channel and a platform file reference for re-sharing without a
-- re-upload), and deletion as a tombstone: the row stays, the image and the prompt go.

ALTER TABLE jobs ADD COLUMN posted_channel_id TEXT;
ALTER TABLE jobs ADD COLUMN file_ref TEXT;
ALTER TABLE jobs ADD COLUMN deleted_at REAL;
