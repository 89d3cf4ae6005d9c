-- User settings of the profile (notification threshold, pause), as key → JSON value.
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
