-- Screening worklists (判定・抽出): each town's rule-set versions (immutable), their adoption
-- history, runs with their entries (a snapshot), and the school each school client speaks for.
CREATE TABLE screening_rule_sets (
    municipality_code TEXT NOT NULL REFERENCES municipalities(municipality_code),
    version INTEGER NOT NULL,
    document TEXT NOT NULL,       -- the rule-set document (JSON, schema/v1/screening-rules.json)
    content_hash TEXT NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL,     -- the staff member (X-Actor)
    client_name TEXT NOT NULL,
    PRIMARY KEY (municipality_code, version)
);

CREATE TABLE screening_adoptions (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    municipality_code TEXT NOT NULL,
    version INTEGER NOT NULL,
    adopted_at TEXT NOT NULL,
    adopted_by TEXT NOT NULL,
    client_name TEXT NOT NULL,
    FOREIGN KEY (municipality_code, version) REFERENCES screening_rule_sets(municipality_code, version)
);
CREATE INDEX screening_adoptions_town ON screening_adoptions (municipality_code, id);

CREATE TABLE screening_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    municipality_code TEXT NOT NULL REFERENCES municipalities(municipality_code),
    rule_version INTEGER NOT NULL,
    applicability_version TEXT NOT NULL,
    as_of TEXT NOT NULL,
    high_water_mark BIGINT NOT NULL, -- the newest change-feed position the run read
    population TEXT NOT NULL,        -- screened children per age band, sex and DV flag (JSON counts)
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL,
    client_name TEXT NOT NULL,
    closed_at TEXT,
    closed_by TEXT,
    close_reason TEXT,
    FOREIGN KEY (municipality_code, rule_version) REFERENCES screening_rule_sets(municipality_code, version)
);
CREATE INDEX screening_runs_town ON screening_runs (municipality_code, id);

CREATE TABLE screening_entries (
    run_id BIGINT NOT NULL REFERENCES screening_runs(id),
    municipality_code TEXT NOT NULL,
    resident_no TEXT NOT NULL,
    score DOUBLE PRECISION NOT NULL,
    age_band TEXT NOT NULL,
    age INTEGER NOT NULL,
    sex INTEGER,
    support_measure BOOLEAN NOT NULL,
    school_code TEXT,
    known TEXT NOT NULL,          -- known reasons (JSON list)
    contributions TEXT NOT NULL,  -- items and fields with records, values and points (JSON)
    decision TEXT,                -- review_outcome of the meeting's decision, once recorded
    decided_on TEXT,
    plan_shared BOOLEAN NOT NULL DEFAULT FALSE,
    decision_record TEXT,         -- source_record_id of the support-outcome record
    PRIMARY KEY (run_id, resident_no)
);
CREATE INDEX screening_entries_school ON screening_entries (municipality_code, school_code);

CREATE TABLE school_clients (
    client_id BIGINT PRIMARY KEY NOT NULL REFERENCES clients(id),
    municipality_code TEXT NOT NULL,
    school_code TEXT NOT NULL,
    linked_at TEXT NOT NULL
);

CREATE TRIGGER screening_rule_sets_immutable_update BEFORE UPDATE ON screening_rule_sets
BEGIN SELECT RAISE(ABORT, 'screening rule sets are immutable'); END;
CREATE TRIGGER screening_rule_sets_immutable_delete BEFORE DELETE ON screening_rule_sets
BEGIN SELECT RAISE(ABORT, 'screening rule sets are immutable'); END;
CREATE TRIGGER screening_adoptions_immutable_update BEFORE UPDATE ON screening_adoptions
BEGIN SELECT RAISE(ABORT, 'screening adoptions are immutable'); END;
CREATE TRIGGER screening_adoptions_immutable_delete BEFORE DELETE ON screening_adoptions
BEGIN SELECT RAISE(ABORT, 'screening adoptions are immutable'); END;
