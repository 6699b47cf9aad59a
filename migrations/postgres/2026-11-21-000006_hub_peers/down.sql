DROP TABLE transfer_packages;
DROP TABLE peer_towns;
DROP TABLE hub_peers;
DROP TABLE hub_signing_key;
