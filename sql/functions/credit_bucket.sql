-- Delinquency bucket by days past due (the write-off line is a product setting).
create or replace function ledger.credit_bucket(p_days_past_due int, p_closed text, p_write_off_dpd int) returns text
language sql immutable
as $$
    select case when p_closed = 'written_off' or (p_closed is null and p_days_past_due > p_write_off_dpd)
                     then 'write_off'
                when p_closed = 'paid_off' or p_days_past_due = 0 then 'current'
                when p_days_past_due <= 30 then '1_30'
                when p_days_past_due <= 60 then '31_60'
                when p_days_past_due <= 90 then '61_90'
                else '91_180' end
$$;
