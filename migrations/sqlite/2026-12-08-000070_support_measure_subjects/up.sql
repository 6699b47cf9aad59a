-- Everyone of a town ever under a DV support measure (in any version of their subject record),
-- kept by the ingest path in the transaction that stores the version, so hiding them is one
-- index read instead of a scan of every version's JSON. Rows are never removed: a later
-- version without the flag, or a retraction, never un-hides a person.
CREATE TABLE support_measure_subjects (
    municipality_code TEXT NOT NULL,
    resident_no TEXT NOT NULL,
    PRIMARY KEY (municipality_code, resident_no)
);
-- The versions stored before this table existed, matched as they were matched until now: the
-- flag as canonical JSON writes it, anywhere in the record.
INSERT OR IGNORE INTO support_measure_subjects (municipality_code, resident_no)
SELECT municipality_code, json_extract(data, '$.subject.resident_no')
FROM record_versions
WHERE record_type = 'subject'
    AND data LIKE '%"support_measure":true%'
    AND json_type(data, '$.subject.resident_no') = 'text';
