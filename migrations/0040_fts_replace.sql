-- A history row's search entry replaces any stale one under the same row id: rows deleted with the file
-- (their search entries left behind) must not stop the console from recording anything afterwards.
DROP TRIGGER history_fts_insert;
CREATE TRIGGER history_fts_insert AFTER INSERT ON history
BEGIN INSERT OR REPLACE INTO history_fts (rowid, body) VALUES (new.seq, new.kind || ' ' || new.detail); END;
