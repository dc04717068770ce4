from decimal import Decimal

import pytest

from ledger.accounts import Side, get_account
from ledger.errors import InsufficientFunds, ValidationError
from ledger.posting import Leg, Transfer, post
from ledger.products import chart
from ledger.products.onboarding import (
    MerchantTerms,
    chargeback_receivable,
    merchant_terms,
    onboard_customer,
    onboard_merchant,
    onboard_supplier,
)


def test_customer_gets_a_wallet_that_never_goes_below_zero(conn):
    first = onboard_customer(conn, "U1")
    again = onboard_customer(conn, "U1")
    assert first.created and not again.created
    wallet = get_account(conn, chart.wallet("U1"))
    assert (wallet.holder_id, wallet.min_balance, wallet.type) == ("U1", 0, "liability")
    assert again.accounts == first.accounts
    chart.ensure_platform_accounts(conn)
    with pytest.raises(InsufficientFunds):
        post(conn, [Transfer("overdraw", "test.overdraw", [
            Leg(wallet.code, Side.DEBIT, 1), Leg(chart.OWN_FUNDS, Side.CREDIT, 1)])])


def test_merchant_gets_payable_receivable_and_terms(conn):
    result = onboard_merchant(conn, "M1", "0.006")
    assert result.created
    assert [a.code for a in result.accounts] == [chart.merchant_payable("M1"), chargeback_receivable("M1")]
    assert all(a.holder_id == "M1" and a.min_balance == 0 for a in result.accounts)
    assert merchant_terms(conn, "M1") == MerchantTerms(Decimal("0.006"), True)
    # Same terms written differently: nothing new.
    assert not onboard_merchant(conn, "M1", "0.0060").created
    assert conn.execute("select count(*) from ledger.merchant_settings").fetchone()[0] == 1
    # New terms are recorded as a new row; the accounts stay.
    changed = onboard_merchant(conn, "M1", "0.01", refund_fee_pro_rata=False)
    assert changed.created and changed.accounts == result.accounts
    assert merchant_terms(conn, "M1") == MerchantTerms(Decimal("0.01"), False)
    assert merchant_terms(conn, "M2") is None


def test_supplier_gets_a_payable(conn):
    result = onboard_supplier(conn, "S1")
    payable = get_account(conn, chart.supplier_payable("S1"))
    assert result.accounts == (payable,)
    assert (payable.holder_id, payable.min_balance) == ("S1", 0)
    assert not onboard_supplier(conn, "S1").created


@pytest.mark.parametrize("bad", ["", "a b", "x" * 65, "U1:evil", None])
def test_bad_party_ids_are_refused(conn, bad):
    with pytest.raises(ValidationError) as error:
        onboard_customer(conn, bad)
    assert error.value.field == "customerId"


@pytest.mark.parametrize("bad", ["-0.01", "0.5", "abc", "NaN", "", 0.006, " 0.006", "0.006\n",
                                 "0.0060000000000000000000000001", "1e-999999999", "0." + "0" * 63])
def test_bad_fee_rates_are_refused(conn, bad):
    with pytest.raises(ValidationError) as error:
        onboard_merchant(conn, "M1", bad)
    assert error.value.field == "feeRate"
    assert merchant_terms(conn, "M1") is None


def test_terms_table_is_append_only(conn):
    onboard_merchant(conn, "M1", "0.006")
    with pytest.raises(Exception, match="append-only"):
        conn.execute("update ledger.merchant_settings set fee_rate = 0")
