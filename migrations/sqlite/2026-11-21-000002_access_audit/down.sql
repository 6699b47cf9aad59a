DROP TABLE opt_outs;
DROP TABLE audit_log;
