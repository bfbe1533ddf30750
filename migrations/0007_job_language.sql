-- The requester's own language on each job (issue 16): posts about a job (queued, progress,
-- result, failure) speak it when the server chose no language, also after a restart.
-- NULL for older jobs and when the platform did not say (they get English).
ALTER TABLE jobs ADD COLUMN language TEXT;
