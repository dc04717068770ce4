-- requires: chain

-- Per account, what a version 2 digest covers (docs/design.md, "Hash chain"): its entry chain
-- head (from the balances projection), its record hash, and the count and head of its chains
-- over status changes and over name/limit changes, in id order.
create or replace view ledger.account_heads as
select a.id as account_id, b.version, b.last_hash as hash, ledger.account_record_hash(row(a.*)::ledger.accounts) as record_hash,
       coalesce(s.n, 0) as status_count, coalesce(s.head, decode(repeat('00', 32), 'hex')) as status_head,
       coalesce(c.n, 0) as change_count, coalesce(c.head, decode(repeat('00', 32), 'hex')) as change_head
  from ledger.accounts a
  join ledger.balances b on b.account_id = a.id
  left join (select x.account_id, count(*) as n,
                    ledger.chain(decode(repeat('00', 32), 'hex'), ledger.status_change_payload(row(x.*)::ledger.account_status_changes) order by x.id) as head
               from ledger.account_status_changes x group by x.account_id) s on s.account_id = a.id
  left join (select x.account_id, count(*) as n,
                    ledger.chain(decode(repeat('00', 32), 'hex'), ledger.account_change_payload(row(x.*)::ledger.account_changes) order by x.id) as head
               from ledger.account_changes x group by x.account_id) c on c.account_id = a.id;
