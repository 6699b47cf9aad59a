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
    SELECT DISTINCT council, council, to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
    FROM municipalities WHERE council IS NOT NULL;
ALTER TABLE municipalities ADD CONSTRAINT municipalities_council_fkey
    FOREIGN KEY (council) REFERENCES councils(code);

ALTER TABLE clients
    ADD COLUMN scope TEXT NOT NULL DEFAULT 'municipality'
        CHECK (scope IN ('municipality', 'council', 'nation')),
    ADD COLUMN council_code TEXT REFERENCES councils(code),
    ALTER COLUMN municipality_code DROP NOT NULL,
    DROP CONSTRAINT clients_municipality_code_name_key;
-- A client holding only `council-admin` under a town of a council now acts for that council;
-- one holding only `national-analyst` for the nation. Mixed-role clients keep their town.
UPDATE clients SET scope = 'council', council_code = m.council, municipality_code = NULL
    FROM municipalities m
    WHERE m.municipality_code = clients.municipality_code
      AND clients.roles = 'council-admin' AND m.council IS NOT NULL;
UPDATE clients SET scope = 'nation', municipality_code = NULL
    WHERE roles = 'national-analyst';
ALTER TABLE clients
    ALTER COLUMN scope DROP DEFAULT,
    ADD CHECK ((scope = 'municipality') = (municipality_code IS NOT NULL)),
    ADD CHECK ((scope = 'council') = (council_code IS NOT NULL));
-- A name is unique within its scope (the town, the council, or the nation).
CREATE UNIQUE INDEX clients_name_in_scope
    ON clients (scope, COALESCE(municipality_code, council_code, ''), name);
