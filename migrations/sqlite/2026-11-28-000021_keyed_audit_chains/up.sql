-- The audit trail becomes one keyed chain per municipality (plus `hub` for hub-level actions):
-- `chain` names it and `chain_seq` is the entry's position in it. Rows written before this
-- migration keep NULL here until the hub converts them at its next start (that needs the audit
-- key, which lives outside the database); the unique index stops two writers from appending
-- the same position of one chain.
ALTER TABLE audit_log ADD COLUMN chain TEXT;
ALTER TABLE audit_log ADD COLUMN chain_seq BIGINT;
CREATE UNIQUE INDEX audit_log_chain ON audit_log (chain, chain_seq);
