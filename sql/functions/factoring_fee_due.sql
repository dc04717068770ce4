-- The fee an advance still has to accrue to reach its cumulative target for day p_on, for the
-- advances given that are open (principal outstanding). Target = round(rate x principal-days),
-- half-up, where principal-days sums each principal movement x the days it has been in place by
-- p_on (days are business days in p_time_zone, the deployment's business time zone, an IANA
-- name): one advance of P on day 0 gives P x d, so day d posts
-- round(P r d) - round(P r (d-1)); a partial repayment lowers the principal from its date on.
-- Already accrued = the debits of the fee-receivable account (its only debits are accruals).
-- Only positive amounts are returned: running a date twice, or an earlier date after a later
-- one, finds nothing to post.
-- PL/pgSQL, not SQL: Citus plans no parameterized SQL function over distributed tables.
-- The signature before the business time zone became a parameter.
drop function if exists ledger.factoring_fee_due(bigint[], date);

create or replace function ledger.factoring_fee_due(p_advance_ids bigint[], p_on date, p_time_zone text)
returns table (advance_id bigint, fee_fen bigint)
language plpgsql stable
as $$
#variable_conflict use_column
begin
    return query
    -- The fee balance is joined after the rest (the CTE is inlined on one server: one plan as
    -- before): on a Citus cluster (docs/scale-out.md) one statement may join the distributed
    -- balances twice only on the account key, and the principal's entries are read on the
    -- account key of its balance, with the rate applied outside the aggregate.
    with due as (
        select a.id, a.fee_account_id, round(a.daily_fee_rate * t.principal_days) as target
          from ledger.factoring_advances a
          join ledger.balances pb on pb.account_id = a.principal_account_id
          cross join lateral (
              select coalesce(sum(
                         case e.side when 'debit' then e.amount::numeric else -e.amount::numeric end
                         * (p_on - (e.effective_at at time zone p_time_zone)::date)), 0) as principal_days
                from ledger.entries e
               where e.account_id = pb.account_id and e.layer = 'posted'
                 and e.effective_at < (p_on::timestamp at time zone p_time_zone)) t
         where a.id = any(p_advance_ids)
           and pb.posted_debits > pb.posted_credits)
    select d.id, (d.target - fb.posted_debits)::bigint
      from due d
      join ledger.balances fb on fb.account_id = d.fee_account_id
     where d.target > fb.posted_debits
     order by d.id;
end
$$;

grant execute on function ledger.factoring_fee_due(bigint[], date, text) to ledger_app;
