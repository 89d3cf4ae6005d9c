-- The action chain of a request the policy allowed without a human (no signed request exists for
-- it): target systems redeeming its grant learn exactly what was allowed.
ALTER TABLE step_ups ADD COLUMN allowed_actions TEXT;
