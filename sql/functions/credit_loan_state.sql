-- Every loan's state as of an effective time, in one set-based pass, derived from the journal:
-- balances of its receivables and allowance, what was paid per component, what fell due before
-- `p_on`, the oldest due date not fully paid and so the days past due. Payments are allocated
-- per component oldest instalment first, which is the order repayments pay them in.
-- PL/pgSQL rather than SQL so that its plan is cached across the daily job's thousands of calls
-- (planning cost as much as running). A loan counts as closed as of the effective time of the
-- transaction that closed it, not of its business date: the daily job judges a day as of its
-- start, so a loan paid off during the day is still open for that day whether the job ran
-- before the payoff or is re-run after it.
create or replace function ledger.credit_loan_state(p_before timestamptz, p_on date, p_loan_ids text[] default null)
returns table (
    loan_id text, customer_id text, closed text,
    principal_fen bigint, fees_fen bigint, interest_fen bigint, late_fees_fen bigint, allowance_fen bigint,
    overdue_fen bigint, days_past_due int,
    paid_principal_fen bigint, paid_fees_fen bigint, paid_interest_fen bigint)
language plpgsql stable
as $$
#variable_conflict use_column
begin
    return query
    with l as (
        select l.* from ledger.loans l where p_loan_ids is null or l.id = any(p_loan_ids)),
    moves as (
        select l.id as loan_id,
               sum(a.sign * case when e.side = 'debit' then e.amount else -e.amount end)
                   filter (where a.part = 'principal') as principal,
               sum(a.sign * case when e.side = 'debit' then e.amount else -e.amount end)
                   filter (where a.part = 'fees') as fees,
               sum(a.sign * case when e.side = 'debit' then e.amount else -e.amount end)
                   filter (where a.part = 'interest') as interest,
               sum(a.sign * case when e.side = 'debit' then e.amount else -e.amount end)
                   filter (where a.part = 'late_fees') as late_fees,
               sum(a.sign * case when e.side = 'debit' then e.amount else -e.amount end)
                   filter (where a.part = 'allowance') as allowance,
               sum(e.amount) filter (where a.part = 'principal' and e.side = 'credit'
                                       and s.step in ('repay', 'payoff')) as paid_principal,
               sum(e.amount) filter (where a.part = 'fees' and e.side = 'credit'
                                       and s.step in ('repay', 'payoff')) as paid_fees,
               sum(e.amount) filter (where a.part = 'interest' and e.side = 'credit'
                                       and s.step in ('repay', 'payoff')) as paid_interest
          from l
          -- One index probe per account; the allowance is a contra account (credit normal).
          cross join lateral (values (l.principal_account_id, 'principal', 1), (l.fees_account_id, 'fees', 1),
                                     (l.interest_account_id, 'interest', 1),
                                     (l.late_fees_account_id, 'late_fees', 1),
                                     (l.allowance_account_id, 'allowance', -1)) a(account_id, part, sign)
          join ledger.entries e
            on e.account_id = a.account_id and e.layer = 'posted' and e.effective_at < p_before
          left join ledger.loan_steps s on s.transaction_id = e.transaction_id
         group by l.id),
    plan as (
        select p.loan_id, max(p.plan_no) as plan_no
          from ledger.loan_plans p join l on l.id = p.loan_id
         where p.made_at < p_before
         group by p.loan_id),
    sched as (
        select i.loan_id, i.due_date,
               sum(i.principal_fen) over w as cum_principal,
               sum(i.fee_fen) over w as cum_fees,
               sum(i.interest_fen) over w as cum_interest
          from ledger.loan_instalments i join plan p using (loan_id, plan_no)
        window w as (partition by i.loan_id order by i.number)),
    due as (
        select s.loan_id,
               max(s.cum_principal) filter (where s.due_date < p_on) as due_principal,
               max(s.cum_fees) filter (where s.due_date < p_on) as due_fees,
               max(s.cum_interest) filter (where s.due_date < p_on) as due_interest,
               min(s.due_date) filter (where s.due_date < p_on and (
                       s.cum_principal > coalesce(m.paid_principal, 0)
                    or s.cum_fees > coalesce(m.paid_fees, 0)
                    or s.cum_interest > coalesce(m.paid_interest, 0))) as oldest_unpaid
          from sched s left join moves m using (loan_id)
         group by s.loan_id)
    select l.id, l.customer_id, c.reason,
           coalesce(m.principal, 0)::bigint, coalesce(m.fees, 0)::bigint, coalesce(m.interest, 0)::bigint,
           coalesce(m.late_fees, 0)::bigint, coalesce(m.allowance, 0)::bigint,
           case when c.reason is not null then 0 else (
               greatest(coalesce(d.due_principal, 0) - coalesce(m.paid_principal, 0), 0)
             + greatest(coalesce(d.due_fees, 0) - coalesce(m.paid_fees, 0), 0)
             + greatest(coalesce(d.due_interest, 0) - coalesce(m.paid_interest, 0), 0)) end::bigint,
           case when c.reason = 'paid_off' or d.oldest_unpaid is null then 0
                else p_on - d.oldest_unpaid end,
           coalesce(m.paid_principal, 0)::bigint, coalesce(m.paid_fees, 0)::bigint,
           coalesce(m.paid_interest, 0)::bigint
      from l
      left join moves m on m.loan_id = l.id
      left join due d on d.loan_id = l.id
      -- Closed by a transaction the journal knew as of p_before (a payoff later that day counts
      -- from the next day on, however late the job runs).
      left join (select c.loan_id, c.reason from ledger.loan_closures c
                   join ledger.transactions t on t.id = c.transaction_id
                  where t.effective_at < p_before) c on c.loan_id = l.id;
end
$$;
