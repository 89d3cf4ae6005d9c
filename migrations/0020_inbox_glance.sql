-- What an inbox line shows (agent, purpose, class, target, warning count, …), computed once when a
-- verified request is stored, so listing a page of 10,000 pending requests reads no signed claims. NULL
-- on rows stored before this column existed: the core computes those from `claims` when listing.
ALTER TABLE requests ADD COLUMN glance TEXT;

-- The inbox's order, most urgent first (critical 0 … low 3; an unknown tier counts as critical), then the
-- soonest expiry: an index walk gives any page without sorting the whole inbox.
ALTER TABLE requests ADD COLUMN urgency INTEGER GENERATED ALWAYS AS (
    CASE tier WHEN 'high' THEN 1 WHEN 'medium' THEN 2 WHEN 'low' THEN 3 ELSE 0 END
) VIRTUAL;
CREATE INDEX requests_inbox ON requests (state, urgency, exp, id);
