-- Transfers of children's records between towns of one hub (転出入時の引継ぎ).
CREATE TABLE transfers (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    municipality_code TEXT NOT NULL REFERENCES municipalities(municipality_code), -- origin
    destination_code TEXT REFERENCES municipalities(municipality_code),          -- NULL while held
    status TEXT NOT NULL,        -- offered, held, accepted, declined, cancelled
    legal_basis TEXT NOT NULL,
    reason_code TEXT NOT NULL,
    note TEXT,
    offered_by TEXT NOT NULL,
    offered_at TEXT NOT NULL,
    deadline TEXT NOT NULL,
    escalate_to TEXT NOT NULL,
    escalated_at TEXT,
    decided_at TEXT,
    decided_by TEXT,
    decline_reason TEXT
);
CREATE INDEX transfers_destination ON transfers (destination_code, status);

CREATE TABLE transfer_children (
    transfer_id BIGINT NOT NULL REFERENCES transfers(id),
    municipality_code TEXT NOT NULL,
    origin_resident_no TEXT NOT NULL,
    destination_resident_no TEXT,
    PRIMARY KEY (transfer_id, origin_resident_no)
);

-- Records frozen as of the offer; disposition set at acceptance.
CREATE TABLE transfer_records (
    transfer_id BIGINT NOT NULL REFERENCES transfers(id),
    municipality_code TEXT NOT NULL,
    record_id BIGINT NOT NULL,
    origin_resident_no TEXT NOT NULL,
    source TEXT NOT NULL,
    source_record_id TEXT NOT NULL,
    record_type TEXT NOT NULL,
    data TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    disposition TEXT,
    PRIMARY KEY (transfer_id, record_id)
);

-- Where a record copied by a transfer came from.
CREATE TABLE record_provenance (
    municipality_code TEXT NOT NULL,
    source TEXT NOT NULL,
    source_record_id TEXT NOT NULL,
    origin_municipality_code TEXT NOT NULL,
    origin_source TEXT NOT NULL,
    transfer_id BIGINT NOT NULL,
    transferred_at TEXT NOT NULL,
    PRIMARY KEY (municipality_code, source, source_record_id)
);

ALTER TABLE subjects ADD COLUMN moved_out_to TEXT;
