-- Each advance with its state read from the journal. Status: DEFAULTED once moved to recourse;
-- SETTLED or REPAID once principal and fee are both paid (by the buyer's payment or by the
-- supplier's repayment, whichever step closed it); else OPEN. closed_at is when the closing step
-- took effect: its business date depends on the deployment's time zone, so readers take it.
-- Dropped first: closed_at replaced a column closed_on, which create or replace cannot do.
drop view if exists ledger.factoring_advance_states;

create or replace view ledger.factoring_advance_states as
select a.id, a.invoice_id, a.supplier_id, i.invoice_no, i.due_date, a.base_fen, a.principal_fen,
       a.advance_rate, a.daily_fee_rate, a.advanced_on,
       pb.posted_debits - pb.posted_credits as principal_outstanding_fen,
       fb.posted_debits as fee_accrued_fen,
       fb.posted_credits - coalesce(d.fee_to_recourse_fen, 0) as fee_paid_fen,
       fb.posted_debits - fb.posted_credits as fee_outstanding_fen,
       coalesce(d.principal_to_recourse_fen, 0) + coalesce(d.fee_to_recourse_fen, 0) as recourse_fen,
       s.status,
       case when s.status <> 'OPEN' then c.effective_at end as closed_at
  from ledger.factoring_advances a
  join ledger.purchase_invoices i on i.id = a.invoice_id
  join ledger.balances pb on pb.account_id = a.principal_account_id
  join ledger.balances fb on fb.account_id = a.fee_account_id
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
  cross join lateral (
      select case when c.step = 'default' then 'DEFAULTED'
                  when pb.posted_debits = pb.posted_credits and fb.posted_debits = fb.posted_credits
                      then case c.step when 'repayment' then 'REPAID' else 'SETTLED' end
                  else 'OPEN' end as status) s;

grant select on ledger.factoring_advance_states to ledger_app;
