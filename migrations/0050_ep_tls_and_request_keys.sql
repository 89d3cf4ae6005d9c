-- An enforcement point's extra trust root (PEM), given with `ep add --ca-cert`, for a gateway that
-- serves TLS with a certificate from a private CA. Used for that enforcement point's calls only.
ALTER TABLE eps ADD COLUMN ca_cert TEXT;

-- A request id is unique only within its enforcement point: history lookups by request go by both.
CREATE INDEX history_ep_request ON history (ep, request_id);
