-- Tracking numbers are numbered by this sequence: unique by construction (11 digits; it stops
-- with an error rather than wrap around and repeat a number).
CREATE SEQUENCE label_serial MINVALUE 1 MAXVALUE 99999999999 NO CYCLE;
