-- Keys over time: this hub's rotated-out signing keys, and every key of every peer hub with
-- the span of packages it verifies, so that a rotated key keeps verifying what it signed
-- before the rotation (for a stated overlap) and a removed peer's packages are refused.
-- Times are RFC 3339 in UTC.

-- This hub's signing keys that were rotated out (the current one is hub_signing_key).
CREATE TABLE hub_key_history (
    public_key TEXT PRIMARY KEY NOT NULL,
    retired_at TEXT NOT NULL,
    -- Peers were told to accept it, for packages signed before retired_at, until then.
    verify_until TEXT NOT NULL
);

-- Every key a peer hub signs or signed with.
CREATE TABLE peer_keys (
    public_key TEXT PRIMARY KEY NOT NULL,
    peer TEXT NOT NULL REFERENCES hub_peers(name),
    -- It signs messages created from then on (NULL: any time before its successor's).
    valid_from TEXT,
    -- It signs messages created before then: its successor's valid_from (NULL: current key).
    valid_until TEXT,
    -- After then it verifies nothing at all: the end of the overlap (NULL: no end).
    verify_until TEXT,
    added_at TEXT NOT NULL
);
INSERT INTO peer_keys (public_key, peer, added_at)
    SELECT public_key, name, added_at FROM hub_peers;

-- A removed peer stays on record (packages and transfers name it), but nothing it signed is
-- accepted from then on.
ALTER TABLE hub_peers ADD COLUMN removed_at TEXT;
