DROP TABLE school_clients;
DROP TABLE screening_entries;
DROP TABLE screening_runs;
DROP TABLE screening_adoptions;
DROP TABLE screening_rule_sets;
DROP FUNCTION screening_rules_immutable();
