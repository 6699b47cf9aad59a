-- The release ledger of anonymised outcome indicators: every published cell of every release.
-- Releases are immutable: the triggers below refuse any change or removal.
CREATE TABLE indicator_releases (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    municipality_code TEXT NOT NULL DEFAULT '*', -- a release covers every town of the hub
    fiscal_year INTEGER NOT NULL,
    published_at TEXT NOT NULL,
    published_by TEXT NOT NULL,
    rule_set_version TEXT NOT NULL,
    disclosure TEXT NOT NULL, -- the disclosure configuration applied (JSON)
    towns TEXT NOT NULL,      -- towns with council and population at release time (JSON)
    audit TEXT NOT NULL       -- the audit's summary (JSON; no counts)
);

CREATE TABLE indicator_cells (
    release_id BIGINT NOT NULL REFERENCES indicator_releases(id),
    municipality_code TEXT NOT NULL, -- the town for municipality cells, '*' otherwise
    level TEXT NOT NULL,
    geography TEXT NOT NULL,
    indicator TEXT NOT NULL,
    category TEXT NOT NULL,
    unit TEXT NOT NULL,
    value DOUBLE PRECISION,           -- NULL when suppressed or not applicable
    rounded BOOLEAN NOT NULL,
    suppressed TEXT,
    floor BIGINT NOT NULL,
    true_value BIGINT,                -- for the audit only; never served
    PRIMARY KEY (release_id, level, geography, indicator, category),
    CHECK (value IS NULL OR suppressed IS NULL)
);

CREATE TRIGGER indicator_releases_immutable_update BEFORE UPDATE ON indicator_releases
BEGIN SELECT RAISE(ABORT, 'indicator releases are immutable'); END;
CREATE TRIGGER indicator_releases_immutable_delete BEFORE DELETE ON indicator_releases
BEGIN SELECT RAISE(ABORT, 'indicator releases are immutable'); END;
CREATE TRIGGER indicator_cells_immutable_update BEFORE UPDATE ON indicator_cells
BEGIN SELECT RAISE(ABORT, 'indicator releases are immutable'); END;
CREATE TRIGGER indicator_cells_immutable_delete BEFORE DELETE ON indicator_cells
BEGIN SELECT RAISE(ABORT, 'indicator releases are immutable'); END;
