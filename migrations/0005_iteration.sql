-- Iteration (issue 13): several images per job, and jobs made from an image (vary, remix,
-- upscale, a user's own image). ``init_image`` is relative to the data dir, like image_path.
-- A job of n > 1 images posts the grid (image_path) and keeps each image as a row here.

ALTER TABLE jobs ADD COLUMN n INTEGER NOT NULL DEFAULT 1;
ALTER TABLE jobs ADD COLUMN kind TEXT NOT NULL DEFAULT 'txt2img';
ALTER TABLE jobs ADD COLUMN init_image TEXT;
ALTER TABLE jobs ADD COLUMN strength REAL;

CREATE TABLE job_images (
    job_id INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    idx    INTEGER NOT NULL,  -- 1..n, as users count them (U1..U4)
    path   TEXT    NOT NULL,  -- relative to the data dir
    PRIMARY KEY (job_id, idx)
) WITHOUT ROWID;

CREATE INDEX jobs_by_parent ON jobs (parent_job_id);
