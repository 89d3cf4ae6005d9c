-- A history row's search entry leaves out the signed token a verified request or a decision carries (`jwt` of a
-- received request, `token` of a signed decision): their base64 text is hundreds of random words per row, which
-- nobody searches for, which match short search words by chance, and which made each insert into the index several
-- times slower in the tail. The row itself (and its hash) still holds them whole; their digests, ids and every other
-- field stay searchable. A rejected request's `jwt` stays indexed: it is whatever the enforcement point sent, not
-- necessarily a token, and a reviewer may look for it. Rows indexed before keep their entries.
-- `history::anchor::SEARCH_BODY` is the same expression, for rebuilding the index.
DROP TRIGGER history_fts_insert;
CREATE TRIGGER history_fts_insert AFTER INSERT ON history
BEGIN INSERT OR REPLACE INTO history_fts (rowid, body) VALUES (new.seq, new.kind || ' ' ||
    CASE WHEN NOT json_valid(new.detail) THEN new.detail
         WHEN new.kind = 'request received' THEN json_remove(new.detail, '$.jwt')
         ELSE json_remove(new.detail, '$.token') END); END;
