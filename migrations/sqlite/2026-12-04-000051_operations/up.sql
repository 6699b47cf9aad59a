-- What a council's operator checks at 2 a.m. and nothing else recorded: how many records each
-- source pushed per day and why the rejected ones were refused (the audit trail keeps only a
-- count, and nothing of a refused atomic batch), and how far each consumer has read a town's
-- change feed. Counts and names only, never personal data. Days are UTC dates (YYYY-MM-DD).
CREATE TABLE push_days (
    municipality_code TEXT NOT NULL,
    source TEXT NOT NULL,
    day TEXT NOT NULL,
    received BIGINT NOT NULL,
    rejected BIGINT NOT NULL,
    last_push_at TEXT NOT NULL,
    PRIMARY KEY (municipality_code, source, day)
);

-- Rejected records per error code (a record refused for two reasons counts under both).
CREATE TABLE push_rejections (
    municipality_code TEXT NOT NULL,
    source TEXT NOT NULL,
    day TEXT NOT NULL,
    code TEXT NOT NULL,
    records BIGINT NOT NULL,
    PRIMARY KEY (municipality_code, source, day, code)
);

-- The cursor each client's last change-feed page ended at.
CREATE TABLE feed_cursors (
    municipality_code TEXT NOT NULL,
    client_id BIGINT NOT NULL,
    client_name TEXT NOT NULL,
    cursor_seq BIGINT NOT NULL,
    read_at TEXT NOT NULL,
    PRIMARY KEY (municipality_code, client_id)
);
