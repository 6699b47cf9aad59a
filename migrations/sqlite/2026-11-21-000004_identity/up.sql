-- Identity resolution: 外字 conversion table, remembered local ids, and the queue of records
-- waiting for a person (or a subject) to link them.
CREATE TABLE gaiji (
    municipality_code TEXT NOT NULL, -- '*' for the whole council
    code_point TEXT NOT NULL,
    standard TEXT NOT NULL,
    note TEXT,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (municipality_code, code_point)
);

CREATE TABLE local_ids (
    municipality_code TEXT NOT NULL,
    source TEXT NOT NULL,
    id_kind TEXT NOT NULL,
    local_id TEXT NOT NULL,
    resident_no TEXT NOT NULL,
    confirmed_at TEXT NOT NULL,
    PRIMARY KEY (municipality_code, source, id_kind, local_id)
);

CREATE TABLE identity_queue (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    municipality_code TEXT NOT NULL,
    record_id BIGINT NOT NULL UNIQUE,
    source TEXT NOT NULL,
    source_record_id TEXT NOT NULL,
    birth_date TEXT,
    status TEXT NOT NULL, -- pending (no candidate), review (a person decides), linked, rejected
    reason TEXT NOT NULL,
    candidates TEXT NOT NULL,
    resident_no TEXT,
    created_at TEXT NOT NULL,
    resolved_at TEXT,
    resolved_by TEXT
);
CREATE INDEX identity_queue_status ON identity_queue (municipality_code, status, birth_date);
