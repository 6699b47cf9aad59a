-- Between hubs: this hub's signing key, the trust store of peer hubs, and the signed packages
-- exchanged with them.

-- This hub's Ed25519 signing key (a single row), created on first start.
CREATE TABLE hub_signing_key (
    id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    public_key TEXT NOT NULL,
    secret_key TEXT NOT NULL,
    created_at TEXT NOT NULL
);

-- Trust store: peer hubs' public keys.
CREATE TABLE hub_peers (
    name TEXT PRIMARY KEY NOT NULL,
    public_key TEXT NOT NULL UNIQUE,
    added_at TEXT NOT NULL
);

-- Towns a peer hub speaks for (registered as municipalities so transfers can name them; no
-- client of this hub can act for them).
CREATE TABLE peer_towns (
    municipality_code TEXT PRIMARY KEY NOT NULL REFERENCES municipalities(municipality_code),
    peer TEXT NOT NULL REFERENCES hub_peers(name)
);

-- Packages sent (outbound) and received (inbound). The package id is the primary key, so a
-- package is imported exactly once.
CREATE TABLE transfer_packages (
    package_id TEXT PRIMARY KEY NOT NULL,
    municipality_code TEXT NOT NULL,  -- this hub's town in the exchange
    direction TEXT NOT NULL CHECK (direction IN ('outbound', 'inbound')),
    transfer_id BIGINT NOT NULL REFERENCES transfers(id),
    peer TEXT NOT NULL REFERENCES hub_peers(name),
    package_sha256 TEXT NOT NULL,
    package_xml TEXT NOT NULL,
    signature TEXT NOT NULL,
    receipt_xml TEXT,
    receipt_signature TEXT,
    created_at TEXT NOT NULL,
    UNIQUE (transfer_id, direction)
);
