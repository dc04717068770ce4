-- requires: version_known_at

-- Balance checkpoints (sql/0090_balance_checkpoints.sql; docs/design.md, "Balance checkpoints").
--
-- A checkpoint (P, V) holds the sum of the account's posted entries before position P (an
-- entry's (effective_at, id)) in effective order among those with account_version <= V. Each
-- sweep of an account, at version S, leaves every position's newest row exact as of S: it
-- rewrites, at version S, every position that an entry recorded since the previous sweep comes
-- before (a backdated one), and adds positions so that no more than p_every entries lie between
-- two, from the checkpoint before the earliest such entry to the end. Nothing is updated: a
-- backdated entry makes new rows; the old ones stay true for the versions they were written at.
--
-- Security definer: the application may run a sweep (it computes every figure itself) but may not
-- write a checkpoint of its own. Returns the number of checkpoints written.
create or replace function ledger.sweep_balance_checkpoints(p_account_id bigint, p_every integer)
returns bigint
language plpgsql volatile security definer set search_path = pg_catalog
as $$
declare
    v_version bigint;
    v_swept bigint;
    v_from_at timestamptz;
    v_from_id bigint;
    v_base ledger.balance_checkpoints%rowtype;
    -- Where the rewrite starts: the base checkpoint's position, or before every entry.
    v_base_at timestamptz := '-infinity';
    v_base_id bigint := 0;
    v_written bigint := 0;
begin
    if p_every is null or p_every < 1 then
        raise exception 'p_every must be at least 1' using errcode = '22023';
    end if;
    -- One sweep of an account at a time; posting is not held up. Read committed: every statement
    -- below sees what a sweep that held the lock before committed (one snapshot taken before the
    -- lock could miss positions it wrote, and leave them stale).
    if current_setting('transaction_isolation') <> 'read committed' then
        raise exception 'a sweep runs at read committed, not %', current_setting('transaction_isolation')
            using errcode = '25001';
    end if;
    perform pg_advisory_xact_lock(hashtextextended('ledger.balance_checkpoints', p_account_id));
    select b.version into v_version from ledger.balances b where b.account_id = p_account_id;
    select coalesce(max(s.account_version), 0) into v_swept
      from ledger.balance_checkpoint_sweeps s where s.account_id = p_account_id;
    if v_version is null or v_version <= v_swept then
        return 0;
    end if;
    -- The entries up to v_version are committed (the balance row was read after them), so later
    -- statements see them all; entries written meanwhile have greater versions and are left out.
    select e.effective_at, e.id into v_from_at, v_from_id
      from ledger.entries e
     where e.account_id = p_account_id and e.account_version > v_swept and e.account_version <= v_version
       and e.layer = 'posted'
     order by e.effective_at, e.id
     limit 1;
    if found then
        -- The checkpoint before the earliest new entry is still exact: nothing new comes before it.
        select c.* into v_base
          from ledger.balance_checkpoints c
         where c.account_id = p_account_id and (c.effective_at, c.entry_id) < (v_from_at, v_from_id)
         order by c.effective_at desc, c.entry_id desc, c.account_version desc
         limit 1;
        if v_base.entry_id is not null then
            v_base_at := v_base.effective_at;
            v_base_id := v_base.entry_id;
        end if;
        insert into ledger.balance_checkpoints
            (account_id, effective_at, entry_id, account_version, posted_balance, posted_entries)
        select p_account_id, s.effective_at, s.id, v_version,
               coalesce(v_base.posted_balance, 0) + s.before, coalesce(v_base.posted_entries, 0) + s.rn - 1
          from (select e.effective_at, e.id, row_number() over w as rn,
                       sum(case when e.side = a.normal_side then e.amount else -e.amount end) over w
                       - case when e.side = a.normal_side then e.amount else -e.amount end as before
                  from ledger.entries e
                  join ledger.accounts a on a.id = e.account_id
                 where e.account_id = p_account_id and (e.effective_at, e.id) >= (v_base_at, v_base_id)
                   and e.layer = 'posted' and e.account_version <= v_version
                window w as (order by e.effective_at, e.id rows between unbounded preceding and current row)) s
         where s.rn > 1
           and ((s.rn - 1) % p_every = 0
                or (s.effective_at, s.id) in (select c.effective_at, c.entry_id from ledger.balance_checkpoints c
                                               where c.account_id = p_account_id
                                                 and (c.effective_at, c.entry_id) > (v_base_at, v_base_id)));
        get diagnostics v_written = row_count;
    end if;
    insert into ledger.balance_checkpoint_sweeps (account_id, account_version, every_entries)
    values (p_account_id, v_version, p_every);
    return v_written;
end
$$;

revoke all on function ledger.sweep_balance_checkpoints(bigint, integer) from public;
grant execute on function ledger.sweep_balance_checkpoints(bigint, integer) to ledger_app;

-- The sum of the account's posted entries effective before p_before, as known at p_known_at,
-- from the newest checkpoint before p_before that the newest sweep seen by p_known_at left exact:
-- its sum, plus the entries from it to p_before (at most the sweep's spacing, unless backdated
-- since), plus the entries recorded since the sweep that come before it. Null when no sweep
-- of the account was known by p_known_at, or more than p_recorded_since_max entries were recorded
-- after it: the caller sums otherwise.
create or replace function ledger.posted_before(p_account_id bigint, p_before timestamptz,
                                                p_known_at timestamptz, p_recorded_since_max bigint)
returns bigint
language plpgsql stable
as $$
declare
    v_known bigint := ledger.version_known_at(p_account_id, p_known_at);
    v_swept bigint;
    v_base ledger.balance_checkpoints%rowtype;
    v_normal text;
    v_sum numeric;
begin
    if v_known is null then
        return null;
    end if;
    select max(s.account_version) into v_swept
      from ledger.balance_checkpoint_sweeps s
     where s.account_id = p_account_id and s.account_version <= v_known;
    if v_swept is null or v_known - v_swept > p_recorded_since_max then
        return null;
    end if;
    select a.normal_side into v_normal from ledger.accounts a where a.id = p_account_id;
    select c.* into v_base
      from ledger.balance_checkpoints c
     where c.account_id = p_account_id and c.effective_at < p_before and c.account_version <= v_swept
     order by c.effective_at desc, c.entry_id desc, c.account_version desc
     limit 1;
    if v_base.entry_id is null then
        -- Before the first checkpoint: fewer than the sweep's spacing (or a backdated few) precede it.
        select coalesce(sum(case when e.side = v_normal then e.amount else -e.amount end), 0) into v_sum
          from ledger.entries e
         where e.account_id = p_account_id and e.layer = 'posted' and e.effective_at < p_before
           and e.account_version <= v_known;
        return v_sum;
    end if;
    select v_base.posted_balance + coalesce(sum(case when e.side = v_normal then e.amount else -e.amount end), 0)
      into v_sum
      from ledger.entries e
     where e.account_id = p_account_id and e.layer = 'posted'
       and (e.effective_at, e.id) >= (v_base.effective_at, v_base.entry_id) and e.effective_at < p_before
       and e.account_version <= v_known;
    select v_sum + coalesce(sum(case when e.side = v_normal then e.amount else -e.amount end), 0) into v_sum
      from ledger.entries e
     where e.account_id = p_account_id and e.account_version > v_swept and e.account_version <= v_known
       and e.layer = 'posted' and (e.effective_at, e.id) < (v_base.effective_at, v_base.entry_id);
    return v_sum;
end
$$;
