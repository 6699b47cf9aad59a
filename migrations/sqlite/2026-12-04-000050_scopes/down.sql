-- Back to town-bound clients: a council client returns to its council's first town, a
-- national one to the first registered town (the only shape the old schema can hold).
PRAGMA defer_foreign_keys = ON;
CREATE TABLE clients_town (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    municipality_code TEXT NOT NULL REFERENCES municipalities(municipality_code),
    name TEXT NOT NULL,
    roles TEXT NOT NULL,
    record_types TEXT,
    token_hash TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    revoked_at TEXT,
    cert_fingerprint TEXT,
    UNIQUE (municipality_code, name)
);
INSERT INTO clients_town (id, municipality_code, name, roles, record_types, token_hash,
                          created_at, revoked_at, cert_fingerprint)
    SELECT id,
           COALESCE(municipality_code,
                    (SELECT MIN(municipality_code) FROM municipalities m
                     WHERE m.council = clients.council_code),
                    (SELECT MIN(municipality_code) FROM municipalities)),
           name, roles, record_types, token_hash, created_at, revoked_at, cert_fingerprint
    FROM clients;
DROP TABLE clients;
ALTER TABLE clients_town RENAME TO clients;
DROP TABLE councils;
