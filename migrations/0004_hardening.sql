-- Hardening (issue 15): a job made from someone else's image whose author hides the details
-- keeps the prompt for the engine, but the core never shows it (bot.access).

ALTER TABLE jobs ADD COLUMN details_hidden INTEGER NOT NULL DEFAULT 0;
