-- The lock timeout for the rest of the database transaction on a Citus cluster, on the workers as
-- well as here: the engine's row locks (balances) are taken, and waited for, on the workers, where
-- set_config() does not reach. Citus sends a SET LOCAL statement on to every node the database
-- transaction reaches (and to each it reaches later) when citus.propagate_set_commands is
-- 'local', and only from within a function it runs as part of a statement, as this one is when
-- called with PERFORM (run directly by the caller's function, the SET would stay here).
-- The callers use set_config() on one server, where this is not needed.
create or replace function ledger.set_lock_timeout(p_lock_timeout text) returns void
language plpgsql
as $$
begin
    perform set_config('citus.propagate_set_commands', 'local', true);
    execute format('set local lock_timeout = %L', p_lock_timeout);
end
$$;
