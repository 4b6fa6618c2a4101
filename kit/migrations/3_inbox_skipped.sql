-- Events of a type this build does not know (a newer producer's) are recorded in the inbox
-- and skipped, never applied or parked (tolerant reader, docs/adr/0006). The partial index
-- keeps counting them (metrics, `orderctl lag`) cheap.
ALTER TABLE inbox ADD COLUMN skipped boolean NOT NULL DEFAULT false;

CREATE INDEX inbox_skipped ON inbox (event_type) WHERE skipped;
