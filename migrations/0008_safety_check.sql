-- The optional image safety check (issue 14). A job's verdict is stored before its image is
-- posted, so a restart never posts a flagged image without its spoiler. NULL: not checked.
ALTER TABLE jobs ADD COLUMN safety_flagged INTEGER;   -- 1 flagged, 0 clean
ALTER TABLE jobs ADD COLUMN safety_score REAL;        -- the model's lean towards "unsafe"
ALTER TABLE jobs ADD COLUMN safety_policy TEXT;       -- the policy it was checked against

-- A server's choice: off, spoiler or withhold; NULL = the operator's TURBOBOT_SAFETY_CHECK.
ALTER TABLE server_settings ADD COLUMN safety_check TEXT;
