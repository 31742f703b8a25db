-- A waiting run records whom it waits for and what it asked (JSON), until answered.
ALTER TABLE runs ADD COLUMN waiting_for TEXT;
