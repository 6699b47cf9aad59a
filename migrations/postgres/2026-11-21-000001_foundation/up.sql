-- Foundation: towns, clients, subjects, records with history and the change feed.
-- Every table carries municipality_code so the schema can be distributed by municipality.
CREATE TABLE municipalities (
    municipality_code TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    council TEXT,
    population BIGINT,
    created_at TEXT NOT NULL
);

CREATE TABLE clients (
    id BIGSERIAL PRIMARY KEY,
    municipality_code TEXT NOT NULL REFERENCES municipalities(municipality_code),
    name TEXT NOT NULL,
    roles TEXT NOT NULL,
    record_types TEXT,
    token_hash TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    revoked_at TEXT,
    UNIQUE (municipality_code, name)
);

CREATE TABLE subjects (
    municipality_code TEXT NOT NULL REFERENCES municipalities(municipality_code),
    resident_no TEXT NOT NULL,
    household_no TEXT,
    name TEXT,
    name_kana TEXT,
    birth_date TEXT,
    sex INTEGER,
    role TEXT,
    support_measure BOOLEAN NOT NULL DEFAULT FALSE,
    data TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (municipality_code, resident_no)
);
CREATE INDEX subjects_household ON subjects (municipality_code, household_no);
CREATE INDEX subjects_basic ON subjects (municipality_code, birth_date);

CREATE TABLE records (
    id BIGSERIAL PRIMARY KEY,
    municipality_code TEXT NOT NULL REFERENCES municipalities(municipality_code),
    source TEXT NOT NULL,
    source_record_id TEXT NOT NULL,
    record_type TEXT NOT NULL,
    schema_version TEXT NOT NULL,
    subject_resident_no TEXT,
    effective_date TEXT NOT NULL,
    data TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    version INTEGER NOT NULL,
    retracted BOOLEAN NOT NULL DEFAULT FALSE,
    updated_at TEXT NOT NULL,
    UNIQUE (municipality_code, source, source_record_id)
);
CREATE INDEX records_subject ON records (municipality_code, subject_resident_no);

-- Every version of every record, in commit order; seq is the change feed's cursor.
CREATE TABLE record_versions (
    seq BIGSERIAL PRIMARY KEY,
    municipality_code TEXT NOT NULL,
    record_id BIGINT NOT NULL,
    source TEXT NOT NULL,
    source_record_id TEXT NOT NULL,
    record_type TEXT NOT NULL,
    version INTEGER NOT NULL,
    retracted BOOLEAN NOT NULL,
    data TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    UNIQUE (record_id, version)
);
CREATE INDEX record_versions_feed ON record_versions (municipality_code, seq);

CREATE TABLE idempotency_keys (
    municipality_code TEXT NOT NULL,
    client_id BIGINT NOT NULL,
    idempotency_key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status INTEGER NOT NULL,
    response TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (municipality_code, client_id, idempotency_key)
);
