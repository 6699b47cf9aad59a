-- Back to town-bound clients: a council client returns to its council's first town, a
-- national one to the first registered town (the only shape the old schema can hold).
DROP INDEX clients_name_in_scope;
UPDATE clients SET municipality_code = COALESCE(
        (SELECT MIN(municipality_code) FROM municipalities m WHERE m.council = clients.council_code),
        (SELECT MIN(municipality_code) FROM municipalities))
    WHERE municipality_code IS NULL;
ALTER TABLE clients
    DROP COLUMN scope,
    DROP COLUMN council_code,
    ALTER COLUMN municipality_code SET NOT NULL,
    ADD CONSTRAINT clients_municipality_code_name_key UNIQUE (municipality_code, name);
ALTER TABLE municipalities DROP CONSTRAINT municipalities_council_fkey;
DROP TABLE councils;
