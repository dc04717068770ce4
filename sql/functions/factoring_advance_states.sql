-- Each advance with its state read from the journal. Status: DEFAULTED once moved to recourse;
-- SETTLED or REPAID once principal and fee are both paid (by the buyer's payment or by the
-- supplier's repayment, whichever step closed it); else OPEN. closed_at is when the closing step
-- took effect: its business date depends on the deployment's time zone, so readers take it.
-- The two balances (principal, fee) come from one join on the account key, summed per advance: on
-- a Citus cluster (docs/scale-out.md) the distributed balances may be joined twice in one
-- statement only on their account key. On one server the same two index probes per advance.
-- Dropped first: closed_at replaced a column closed_on, which create or replace cannot do.
drop view if exists ledger.factoring_advance_states;

create or replace view ledger.factoring_advance_states as
select a.id, a.invoice_id, a.supplier_id, i.invoice_no, i.due_date, a.base_fen, a.principal_fen,
       a.advance_rate, a.daily_fee_rate, a.advanced_on,
       sum(b.posted_debits - b.posted_credits) filter (where b.account_id = a.principal_account_id)::bigint
           as principal_outstanding_fen,
       sum(b.posted_debits) filter (where b.account_id = a.fee_account_id)::bigint as fee_accrued_fen,
       (sum(b.posted_credits) filter (where b.account_id = a.fee_account_id)
        - coalesce(d.fee_to_recourse_fen, 0))::bigint as fee_paid_fen,
       sum(b.posted_debits - b.posted_credits) filter (where b.account_id = a.fee_account_id)::bigint
           as fee_outstanding_fen,
       coalesce(d.principal_to_recourse_fen, 0) + coalesce(d.fee_to_recourse_fen, 0) as recourse_fen,
       case when c.step = 'default' then 'DEFAULTED'
            when sum(abs(b.posted_debits - b.posted_credits)) = 0
                then case c.step when 'repayment' then 'REPAID' else 'SETTLED' end
            else 'OPEN' end as status,
       case when c.step = 'default' or sum(abs(b.posted_debits - b.posted_credits)) = 0 then c.effective_at end
           as closed_at
  from ledger.factoring_advances a
  join ledger.purchase_invoices i on i.id = a.invoice_id
  join ledger.balances b on b.account_id in (a.principal_account_id, a.fee_account_id)
  left join lateral (
      select (t.metadata ->> 'principal_to_recourse_fen')::bigint as principal_to_recourse_fen,
             (t.metadata ->> 'fee_to_recourse_fen')::bigint as fee_to_recourse_fen
        from ledger.factoring_steps st join ledger.transactions t on t.id = st.transaction_id
       where st.advance_id = a.id and st.step = 'default') d on true
  left join lateral (
      select st.step, t.effective_at
        from ledger.factoring_steps st join ledger.transactions t on t.id = st.transaction_id
       where st.advance_id = a.id and st.step in ('payment', 'repayment', 'default')
       order by st.transaction_id desc limit 1) c on true
 group by a.id, a.invoice_id, a.supplier_id, i.invoice_no, i.due_date, a.base_fen, a.principal_fen,
          a.advance_rate, a.daily_fee_rate, a.advanced_on, d.principal_to_recourse_fen, d.fee_to_recourse_fen,
          c.step, c.effective_at;

grant select on ledger.factoring_advance_states to ledger_app;
