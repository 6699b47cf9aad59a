-- Scopes: a client is bound to a municipality, a joint-use council (共同利用) or the nation.
-- Councils become entities; a town's `council` column names the council it belongs to (one
-- at most, as the indicators' geography assumes). Existing council labels become councils
-- whose code and name are the label, so nothing that named a council changes.
CREATE TABLE councils (
    code TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    -- How the council's operator is reached (mail address, phone): no personal data of children.
    operator_contact TEXT,
    created_at TEXT NOT NULL
);
INSERT INTO councils (code, name, created_at)
    SELECT DISTINCT council, council, strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
    FROM municipalities WHERE council IS NOT NULL;
-- (PostgreSQL adds a foreign key from municipalities.council to councils; SQLite cannot add
-- one without rebuilding the towns' table, which every table references, so there the store
-- registers a council before any town names it.)

-- SQLite cannot relax NOT NULL in place: the clients table is rebuilt with the same ids.
-- screening_school_links references clients(id); its check waits for the commit, when the
-- rebuilt table is in place again.
PRAGMA defer_foreign_keys = ON;
CREATE TABLE clients_scoped (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    scope TEXT NOT NULL CHECK (scope IN ('municipality', 'council', 'nation')),
    municipality_code TEXT REFERENCES municipalities(municipality_code),
    council_code TEXT REFERENCES councils(code),
    name TEXT NOT NULL,
    roles TEXT NOT NULL,
    record_types TEXT,
    token_hash TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    revoked_at TEXT,
    cert_fingerprint TEXT,
    CHECK ((scope = 'municipality') = (municipality_code IS NOT NULL)),
    CHECK ((scope = 'council') = (council_code IS NOT NULL))
);
-- A client holding only `council-admin` under a town of a council now acts for that council;
-- one holding only `national-analyst` for the nation. Mixed-role clients keep their town.
INSERT INTO clients_scoped (id, scope, municipality_code, council_code, name, roles,
                            record_types, token_hash, created_at, revoked_at, cert_fingerprint)
    SELECT c.id,
           CASE WHEN c.roles = 'national-analyst' THEN 'nation'
                WHEN c.roles = 'council-admin' AND m.council IS NOT NULL THEN 'council'
                ELSE 'municipality' END,
           CASE WHEN c.roles = 'national-analyst'
                  OR (c.roles = 'council-admin' AND m.council IS NOT NULL) THEN NULL
                ELSE c.municipality_code END,
           CASE WHEN c.roles = 'council-admin' THEN m.council END,
           c.name, c.roles, c.record_types, c.token_hash, c.created_at, c.revoked_at,
           c.cert_fingerprint
    FROM clients c JOIN municipalities m ON m.municipality_code = c.municipality_code;
DROP TABLE clients;
ALTER TABLE clients_scoped RENAME TO clients;
-- A name is unique within its scope (the town, the council, or the nation).
CREATE UNIQUE INDEX clients_name_in_scope
    ON clients (scope, COALESCE(municipality_code, council_code, ''), name);
