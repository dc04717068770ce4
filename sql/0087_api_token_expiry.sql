-- A token may carry an expiry: from then on it is refused (HTTP 401), as if revoked. Null: it
-- never expires. Set when the token is made; tokens stay append-only.

alter table ledger.api_tokens
    add column expires_at timestamptz,
    add constraint api_tokens_expires_after_creation check (expires_at > created_at);
