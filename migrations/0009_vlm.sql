-- The VLM (issue 14): a describe job and --enhance. ``enhance`` asks the VLM to rewrite the
-- prompt before the image is made; ``prompt`` stays the user's own and ``text`` holds the
-- enhanced one (the image's prompt), or a describe's result. ``vlm_language``: the language
-- a describe answers in (``language``, from 0007, is the requester's own, for posts).

ALTER TABLE jobs ADD COLUMN enhance INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN vlm_language TEXT;
ALTER TABLE jobs ADD COLUMN text TEXT;
