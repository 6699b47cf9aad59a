-- A client may be bound to the SHA-256 fingerprint of its TLS client certificate.
ALTER TABLE clients ADD COLUMN cert_fingerprint TEXT;
