-- The application checks a bearer token without being able to read the stored hashes: given
-- the sha256 of the token presented, it gets that token's row or nothing.
create or replace function ledger.api_token_by_sha256(p_sha256 bytea) returns setof ledger.api_tokens
language sql stable security definer set search_path = pg_catalog, ledger
as $$ select t.* from ledger.api_tokens t where t.token_sha256 = p_sha256 $$;

revoke all on function ledger.api_token_by_sha256(bytea) from public;
grant execute on function ledger.api_token_by_sha256(bytea) to ledger_app;
