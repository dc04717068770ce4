-- Product settings, versioned by the business day they take effect (ledger/products/settings.py).
--
-- A change names some of a product's settings with their new values (as text, parsed and checked
-- by the product's module) and the business day it takes effect from. What is in force on a day
-- is, per setting, the value of the change with the latest effective day on or before it (the
-- later recorded of two for the same day). Changes are never edited: a mistake is corrected by
-- a later change. The values of consumer credit, kept until now in the editable table
-- ledger.credit_settings, become its first change, in force from the start of the calendar.

create table ledger.product_setting_changes (
    id             bigint generated always as identity primary key,
    product        text not null check (product in ('credit')),  -- a product with settings adds itself
    settings       jsonb not null check (jsonb_typeof(settings) = 'object' and settings <> '{}'::jsonb),
    effective_from date not null check (effective_from >= date '1970-01-01'),
    recorded_at    timestamptz not null default clock_timestamp(),
    recorded_by    text not null check (length(recorded_by) between 1 and 100)
);

-- What is in force on a day: the changes of one product up to that day, newest first.
create index product_setting_changes_day_idx on ledger.product_setting_changes (product, effective_from desc, id desc);

insert into ledger.product_setting_changes (product, settings, effective_from, recorded_by)
select 'credit', jsonb_object_agg(name, value), date '1970-01-01', 'migration'
  from ledger.credit_settings;

drop table ledger.credit_settings;

grant select, insert on ledger.product_setting_changes to ledger_app;
