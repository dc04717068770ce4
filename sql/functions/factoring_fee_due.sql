-- The fee an advance still has to accrue to reach its cumulative target for day p_on, for the
-- advances given that are open (principal outstanding). Target = round(rate x principal-days),
-- half-up, where principal-days sums each principal movement x the days it has been in place by
-- p_on (days are business days in p_time_zone, the deployment's business time zone, an IANA
-- name): one advance of P on day 0 gives P x d, so day d posts
-- round(P r d) - round(P r (d-1)); a partial repayment lowers the principal from its date on.
-- Already accrued = the debits of the fee-receivable account (its only debits are accruals).
-- Only positive amounts are returned: running a date twice, or an earlier date after a later
-- one, finds nothing to post.
-- The signature before the business time zone became a parameter.
drop function if exists ledger.factoring_fee_due(bigint[], date);

create or replace function ledger.factoring_fee_due(p_advance_ids bigint[], p_on date, p_time_zone text)
returns table (advance_id bigint, fee_fen bigint)
language sql stable
as $$
    select a.id, (t.target - fb.posted_debits)::bigint
      from ledger.factoring_advances a
      join ledger.balances pb on pb.account_id = a.principal_account_id
      join ledger.balances fb on fb.account_id = a.fee_account_id
      cross join lateral (
          select round(a.daily_fee_rate * coalesce(sum(
                     case e.side when 'debit' then e.amount::numeric else -e.amount::numeric end
                     * (p_on - (e.effective_at at time zone p_time_zone)::date)), 0)) as target
            from ledger.entries e
           where e.account_id = a.principal_account_id and e.layer = 'posted'
             and e.effective_at < (p_on::timestamp at time zone p_time_zone)) t
     where a.id = any(p_advance_ids)
       and pb.posted_debits > pb.posted_credits
       and t.target > fb.posted_debits
     order by a.id
$$;

grant execute on function ledger.factoring_fee_due(bigint[], date, text) to ledger_app;
