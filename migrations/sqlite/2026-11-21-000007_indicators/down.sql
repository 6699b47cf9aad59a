DROP TABLE indicator_cells;
DROP TABLE indicator_releases;
