-- Payments and onboarding: the immutable facts the payment product needs beside the journal.
--
-- Nothing here holds an amount that changes: what a payment authorized, captured, refunded or
-- charged as fee is read from the journal's own entries. These tables only record who and
-- what (a merchant's terms, a payment's parties) and which journal transactions belong to which
-- payment, merchant or bank, written by the product code in the same database transaction as
-- the posting. All three are append-only.

-- A merchant's terms; the latest row per merchant applies. A change of terms is a new row.
create table ledger.merchant_settings (
    id                  bigint generated always as identity primary key,
    merchant_id         text not null check (length(merchant_id) between 1 and 100),
    -- Fee as a fraction of the captured amount ("0.006" = 0.6%), below 100%.
    fee_rate            numeric not null check (fee_rate >= 0 and fee_rate < 1),
    -- Whether a refund gives back the matching share of the fee charged at capture.
    refund_fee_pro_rata boolean not null,
    recorded_at         timestamptz not null default clock_timestamp()
);

create index merchant_settings_merchant_idx on ledger.merchant_settings (merchant_id, id desc);

-- One row per authorization: the payment's parties and terms, fixed when it was authorized.
create table ledger.payments (
    id                  bigint generated always as identity primary key,
    customer_id         text not null,
    merchant_id         text not null,
    hold_id             bigint not null unique references ledger.transactions (id),
    fee_rate            numeric not null check (fee_rate >= 0 and fee_rate < 1),
    refund_fee_pro_rata boolean not null,
    created_at          timestamptz not null default clock_timestamp()
);

create index payments_customer_idx on ledger.payments (customer_id, id);
create index payments_merchant_idx on ledger.payments (merchant_id, id);

-- Which journal transaction is which step of the payment product. Amounts stay in the entries;
-- this is an index the product writes itself, so a transaction posted through the generic API
-- with a look-alike kind or metadata can never count as a capture, refund or settlement.
create table ledger.payment_steps (
    transaction_id bigint primary key references ledger.transactions (id),
    step           text not null check (step in (
                       'top_up', 'settle_top_ups', 'authorize', 'capture', 'fee', 'void', 'refund',
                       'chargeback', 'settle_merchant', 'write_off_chargeback', 'sweep')),
    payment_id     bigint references ledger.payments (id),
    merchant_id    text,
    bank           text,
    check ((step in ('authorize', 'capture', 'fee', 'void', 'refund', 'chargeback')) = (payment_id is not null))
);

create index payment_steps_payment_idx on ledger.payment_steps (payment_id, transaction_id)
    where payment_id is not null;
create index payment_steps_merchant_idx on ledger.payment_steps (merchant_id, step, transaction_id)
    where merchant_id is not null;

call ledger.make_append_only('merchant_settings', 'payments', 'payment_steps');

grant select, insert on ledger.merchant_settings, ledger.payments, ledger.payment_steps to ledger_app;
-- SELECT ... FOR UPDATE needs an UPDATE privilege; refunds lock the payment row with it to
-- serialize. The trigger above still refuses every actual UPDATE.
grant update (created_at) on ledger.payments to ledger_app;
