ALTER TABLE subjects DROP COLUMN moved_out_to;
DROP TABLE record_provenance;
DROP TABLE transfer_records;
DROP TABLE transfer_children;
DROP TABLE transfers;
