from ledger.accounts import AccountType, NewAccount, Side, create_account
from ledger.balances import balance
from ledger.posting import Leg, Transfer, post


def test_transfer(conn):
    wallet, _ = create_account(conn, NewAccount("liabilities:wallet:U1", "U1", AccountType.LIABILITY, "CNY", min_balance=0))
    bank, _ = create_account(conn, NewAccount("assets:clearing:icbc", "ICBC", AccountType.ASSET, "CNY"))
    r = post(conn, [Transfer("k1", "wallet.top_up", [Leg(bank.code, Side.DEBIT, 100000), Leg(wallet.code, Side.CREDIT, 100000)])])
    assert r[0].replayed is False
    assert balance(conn, wallet.id).posted == 100000
