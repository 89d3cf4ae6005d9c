-- The inbox's counts without reading whole rows: per enforcement point pending counts come from the
-- index alone, and the decisions still undelivered (a handful at any time) have their own small index,
-- so the counts cost the same with 10 or 10,000 requests pending.
DROP INDEX requests_state;
CREATE INDEX requests_state ON requests (state, exp, ep);
CREATE INDEX decisions_undelivered ON decisions (ep, request_id) WHERE outcome IS NULL;
