DROP TABLE indicator_cells;
DROP TABLE indicator_releases;
DROP FUNCTION indicator_ledger_immutable();
