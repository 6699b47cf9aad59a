-- A request running under an Idempotency-Key holds the key on a lease it renews while it runs;
-- a retry may take over a key whose lease ran out (its request died with its process). Rows
-- reserved before this migration have no lease and count as expired.
ALTER TABLE idempotency_keys ADD COLUMN lease_owner TEXT;
ALTER TABLE idempotency_keys ADD COLUMN lease_until TEXT;
