ALTER TABLE hub_peers DROP COLUMN removed_at;
DROP TABLE peer_keys;
DROP TABLE hub_key_history;
