"""The idle-funds yield product over GraphQL: the contract names, typed errors, the 7-day yield
from the published figures, holder visibility, and whole books after a mix."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
from published import yuebao_incomes

from ledger import calendar
from ledger.accounts import AccountType, Side
from ledger.audit import verify
from ledger.journal import trial_balance
from ledger.posting import Leg, Transfer, post_one
from ledger.products import chart, fund
from ledger.products.onboarding import onboard_customer

Conn = psycopg.Connection[Any]
_CLEARING = chart.bank_clearing("B1")

_CREATE = """mutation($input: CreateFundInput!) { createFund(input: $input) {
    __typename ... on FundCreated { created fund { id name } } ... on LedgerError { code message } } }"""
_SUBSCRIBE = """mutation($input: SubscribeFundInput!) { subscribeFund(input: $input) {
    __typename ... on FundSubscribed { replayed transaction { id kind } holding { balance { amount } } }
    ... on LedgerError { code message } } }"""
_REDEEM = """mutation($input: RedeemFundInput!) { redeemFund(input: $input) {
    __typename ... on FundRedeemed { replayed holding { balance { amount } } }
    ... on LedgerError { code message } } }"""
_PUBLISH = """mutation($input: PublishFundIncomeInput!) { publishFundIncome(input: $input) {
    __typename ... on FundIncomePublished { fund { id } date incomePer10k holders income { amount } transactions replayed }
    ... on LedgerError { code message } } }"""
_HOLDING = """query($c: String!, $f: String!) { fundHolding(customerId: $c, fundId: $f) {
    customerId balance { amount currency } account { code holderId }
    incomeHistory(first: 10) { date income { amount } cursor } } }"""


def _figures() -> dict[date, Decimal]:
    return yuebao_incomes()

def _customer_with(conn: Conn, customer_id: str, amount_fen: int) -> None:
    onboard_customer(conn, customer_id)
    chart.ensure(conn, _CLEARING, "Clearing B1", AccountType.ASSET)
    post_one(conn, Transfer(f"topup:{customer_id}", "payment.topup", [
        Leg(_CLEARING, Side.DEBIT, amount_fen), Leg(chart.wallet(customer_id), Side.CREDIT, amount_fen)]))


def _move(api: Any, query: str, key: str, customer_id: str, amount: str, fund_id: str = "YEB") -> dict[str, Any]:
    result: dict[str, Any] = api.data(query, {"input": {
        "idempotencyKey": key, "customerId": customer_id, "fundId": fund_id, "amount": amount}}, role="operator")
    return next(iter(result.values()))


def _publish(api: Any, day: date, figure: str, fund_id: str = "YEB", **auth: Any) -> dict[str, Any]:
    result: dict[str, Any] = api.data(_PUBLISH, {"input": {
        "fundId": fund_id, "date": day.isoformat(), "incomePer10k": figure}}, **(auth or {"role": "operator"}))[
        "publishFundIncome"]
    return result


def test_create_subscribe_redeem_with_typed_refusals(api: Any, conn: Conn) -> None:
    created = api.data(_CREATE, {"input": {"fundId": "YEB", "name": "Yu'ebao"}})["createFund"]
    assert created == {"__typename": "FundCreated", "created": True, "fund": {"id": "YEB", "name": "Yu'ebao"}}
    again = api.data(_CREATE, {"input": {"fundId": "YEB", "name": "Other"}})["createFund"]
    assert (again["__typename"], again["code"]) == ("FundExists", "FUND_EXISTS")
    denied = api.data(_CREATE, {"input": {"fundId": "F2", "name": "x"}}, role="operator")["createFund"]
    assert denied["__typename"] == "Forbidden"
    _customer_with(conn, "U1", 100_000)

    subscribed = _move(api, _SUBSCRIBE, "s1", "U1", "60000")
    assert subscribed["__typename"] == "FundSubscribed" and subscribed["transaction"]["kind"] == "fund.subscribe"
    assert subscribed["holding"]["balance"]["amount"] == "60000"
    assert _move(api, _SUBSCRIBE, "s1", "U1", "60000")["replayed"] is True
    assert _move(api, _SUBSCRIBE, "s2", "U1", "40001")["__typename"] == "InsufficientFunds"
    assert _move(api, _SUBSCRIBE, "s3", "U1", "1", fund_id="NOPE")["__typename"] == "FundNotFound"
    assert _move(api, _REDEEM, "r1", "U1", "60001")["__typename"] == "InsufficientFunds"
    _customer_with(conn, "U2", 1)
    assert _move(api, _REDEEM, "r2", "U2", "1")["__typename"] == "HoldingNotFound"
    redeemed = _move(api, _REDEEM, "r3", "U1", "10000")
    assert (redeemed["__typename"], redeemed["holding"]["balance"]["amount"]) == ("FundRedeemed", "50000")
    bad = api.query(_SUBSCRIBE, {"input": {"idempotencyKey": "s4", "customerId": "U1", "fundId": "YEB",
                                           "amount": 5}}, role="operator")
    assert bad.get("errors")  # amounts are strings of minor units, never numbers


def test_publish_income_replays_refuses_another_figure_and_credits_holders(api: Any, conn: Conn) -> None:
    api.data(_CREATE, {"input": {"fundId": "YEB", "name": "Yu'ebao"}})
    _customer_with(conn, "U1", 1_000_000)
    fund.subscribe(conn, idempotency_key="s1", customer_id="U1", fund_id="YEB", amount_fen=1_000_000,
                   effective_at=datetime(2013, 12, 31, tzinfo=calendar.business_time_zone()))
    first = _publish(api, date(2014, 1, 1), "1.7807")
    assert first == {"__typename": "FundIncomePublished", "fund": {"id": "YEB"}, "date": "2014-01-01",
                     "incomePer10k": "1.7807", "holders": 1, "income": {"amount": "178"}, "transactions": 1,
                     "replayed": False}
    assert _publish(api, date(2014, 1, 1), "1.7807")["replayed"] is True
    refused = _publish(api, date(2014, 1, 1), "1.9")
    assert (refused["__typename"], refused["code"]) == ("IncomeAlreadyPublished", "INCOME_ALREADY_PUBLISHED")
    assert _publish(api, date(2013, 12, 30), "1.0")["__typename"] == "IncomeOutOfOrder"
    assert _publish(api, date(2014, 1, 2), "abc")["__typename"] == "ValidationError"
    for figure in ["1.7807\n", " 1.7807", "1e-999999999"]:  # taken as written; at most 18 places parse
        refused = api.data(_PUBLISH.replace("code message", "code message ... on ValidationError { field }"),
                           {"input": {"fundId": "YEB", "date": "2014-01-02", "incomePer10k": figure}},
                           role="operator")["publishFundIncome"]
        assert (refused["__typename"], refused["field"]) == ("ValidationError", "incomePer10k"), (figure, refused)
    assert _publish(api, date(2014, 1, 2), "1.0", role="holder", holder="U1")["__typename"] == "Forbidden"

    own = api.data(_HOLDING, {"c": "U1", "f": "YEB"}, role="holder", holder="U1")["fundHolding"]
    assert own["balance"] == {"amount": "1000178", "currency": "CNY"}
    assert own["account"] == {"code": fund.holding_account("YEB", "U1"), "holderId": "U1"}
    assert [(i["date"], i["income"]["amount"]) for i in own["incomeHistory"]] == [("2014-01-01", "178")]
    assert api.data(_HOLDING, {"c": "U1", "f": "YEB"}, role="holder", holder="U2")["fundHolding"] is None
    assert api.data(_HOLDING, {"c": "U9", "f": "YEB"}, role="auditor")["fundHolding"] is None


def test_seven_day_yield_for_2014_01_07_from_the_published_figures(api: Any) -> None:
    figures = _figures()
    api.data(_CREATE, {"input": {"fundId": "YEB", "name": "Yu'ebao"}})
    for offset in range(7):
        day = date(2014, 1, 1) + timedelta(days=offset)
        assert _publish(api, day, str(figures[day]))["__typename"] == "FundIncomePublished"
    data = api.data(
        """{ fund(id: "YEB") { name sevenDayYield(date: "2014-01-07")
             dailyFigures(from: "2014-01-05", to: "2014-01-31") { date incomePer10k sevenDayYield }
             holdersTotal { amount } } }""", role="auditor")
    assert data["fund"]["sevenDayYield"] == "6.738"
    assert data["fund"]["dailyFigures"] == [
        {"date": "2014-01-05", "incomePer10k": "1.7748", "sevenDayYield": None},
        {"date": "2014-01-06", "incomePer10k": "1.7740", "sevenDayYield": None},
        {"date": "2014-01-07", "incomePer10k": "1.8086", "sevenDayYield": "6.738"}]
    assert data["fund"]["holdersTotal"] == {"amount": "0"}
    # Holders see the fund's figures (public) but not the platform's total.
    public = api.data('{ fund(id: "YEB") { sevenDayYield(date: "2014-01-07") } }', role="holder", holder="U1")
    assert public["fund"]["sevenDayYield"] == "6.738"
    hidden = api.errors('{ fund(id: "YEB") { holdersTotal { amount } } }', role="holder", holder="U1")
    assert hidden[0]["extensions"]["code"] == "FORBIDDEN"
    missing = api.errors('{ fund(id: "YEB") { sevenDayYield(date: "2014-01-06") } }', role="auditor")
    assert missing[0]["extensions"]["code"] == "INCOME_FIGURES_MISSING" and "2013-12-31" in missing[0]["message"]
    assert api.data('{ fund(id: "NOPE") { id } }', role="auditor")["fund"] is None


def test_after_a_mix_through_the_api_the_books_balance_and_verify(api: Any, conn: Conn) -> None:
    figures = _figures()
    api.data(_CREATE, {"input": {"fundId": "YEB", "name": "Yu'ebao"}})
    for number in range(3):
        _customer_with(conn, f"U{number}", 500_000)
        fund.subscribe(conn, idempotency_key=f"old{number}", customer_id=f"U{number}", fund_id="YEB",
                       amount_fen=300_000, effective_at=datetime(2013, 12, 31, tzinfo=calendar.business_time_zone()))
    for offset in range(3):
        day = date(2014, 1, 1) + timedelta(days=offset)
        _publish(api, day, str(figures[day]))
    assert _move(api, _SUBSCRIBE, "s", "U0", "200000")["__typename"] == "FundSubscribed"
    assert _move(api, _REDEEM, "r", "U1", "300100")["__typename"] == "FundRedeemed"
    chart.ensure(conn, chart.bank_reserve("B1"), "Reserve B1", AccountType.ASSET)
    settled = api.data("""mutation { settleFund(input: {idempotencyKey: "st", fundId: "YEB", bank: "B1"}) {
        __typename ... on FundSettled { subscriptions { amount } redemptions { amount } } } }""",
                       role="operator")["settleFund"]
    assert settled == {"__typename": "FundSettled", "subscriptions": {"amount": "1100000"},
                       "redemptions": {"amount": "300100"}}
    total = api.data('{ fund(id: "YEB") { holdersTotal { amount } } }', role="operator")["fund"]["holdersTotal"]
    holdings = sum(fund.holding(conn, f"U{n}", "YEB").balance_fen for n in range(3))
    assert total == {"amount": str(holdings)}
    lines = trial_balance(conn)
    assert sum(line.debit_balance for line in lines) == sum(line.credit_balance for line in lines)
    report = verify(conn, progress=None)
    assert report.ok, report.problems
