DROP TABLE idempotency_keys;
DROP TABLE record_versions;
DROP TABLE records;
DROP TABLE subjects;
DROP TABLE clients;
DROP TABLE municipalities;
