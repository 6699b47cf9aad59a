ALTER TABLE clients DROP COLUMN cert_fingerprint;
