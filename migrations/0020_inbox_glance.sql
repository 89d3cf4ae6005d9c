-- What an inbox line shows (agent, purpose, class, target, warning count, …), computed once when a
-- verified request is stored, so listing 10,000 pending requests reads no signed claims. NULL on rows
-- stored before this column existed: the core computes those from `claims` when listing.
ALTER TABLE requests ADD COLUMN glance TEXT;
