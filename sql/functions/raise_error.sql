create or replace function ledger.raise_error(p_sqlstate text, p_message text, p_detail jsonb default '{}')
returns void
language plpgsql
as $$
begin
    raise exception using errcode = p_sqlstate, message = p_message, detail = p_detail::text;
end
$$;
