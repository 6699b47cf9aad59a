DROP TABLE identity_queue;
DROP TABLE local_ids;
DROP TABLE gaiji;
