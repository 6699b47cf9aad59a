DROP INDEX audit_log_chain;
ALTER TABLE audit_log DROP COLUMN chain_seq;
ALTER TABLE audit_log DROP COLUMN chain;
