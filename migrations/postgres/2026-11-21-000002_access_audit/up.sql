-- Append-only, hash-chained audit trail; guardian objections (不同意) to screening.
CREATE TABLE audit_log (
    seq BIGSERIAL PRIMARY KEY,
    municipality_code TEXT NOT NULL,
    at TEXT NOT NULL,
    client_id BIGINT,
    client_name TEXT,
    actor TEXT,
    roles TEXT,
    subject TEXT,
    action TEXT NOT NULL,
    purpose TEXT,
    legal_basis TEXT,
    result TEXT NOT NULL,
    detail TEXT,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE
);
CREATE INDEX audit_log_subject ON audit_log (municipality_code, subject, seq);

CREATE TABLE opt_outs (
    municipality_code TEXT NOT NULL REFERENCES municipalities(municipality_code),
    resident_no TEXT NOT NULL,
    objected_on TEXT NOT NULL,
    legal_note TEXT,
    recorded_at TEXT NOT NULL,
    PRIMARY KEY (municipality_code, resident_no)
);
