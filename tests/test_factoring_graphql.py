"""Factoring advances end to end over GraphQL: the worked numbers and the edge cases."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import psycopg

from ledger import calendar
from ledger.audit import verify
from ledger.journal import trial_balance

TODAY = calendar.today()

ERRORS = "... on LedgerError { code message }"
ADVANCE = """id supplierId invoiceNo status daysOutstanding advanceRate dailyFeeRate advancedOn
    principal { amount } principalOutstanding { amount } feeAccrued { amount } feePaid { amount }
    outstanding { amount } recourse { amount }"""

RECORD = f"""mutation($input: RecordPurchaseInvoiceInput!) {{ recordPurchaseInvoice(input: $input) {{ __typename
    ... on PurchaseInvoiceRecorded {{ replayed invoice {{ id status amount {{ amount }} }} }} {ERRORS} }} }}"""
ADVANCE_ON = f"""mutation($input: AdvanceOnInvoiceInput!) {{ advanceOnInvoice(input: $input) {{ __typename
    ... on AdvanceMade {{ replayed advance {{ {ADVANCE} }} }} {ERRORS} }} }}"""
ACCRUE = f"""mutation($input: AccrueFactoringFeesInput!) {{ accrueFactoringFees(input: $input) {{ __typename
    ... on FactoringFeesAccrued {{ date advancesAccrued batches fee {{ amount }} }} {ERRORS} }} }}"""
SETTLE = f"""mutation($input: SettleInvoiceInput!) {{ settleInvoice(input: $input) {{ __typename
    ... on InvoiceSettled {{ replayed paid {{ amount }} fee {{ amount }} principal {{ amount }}
        remainder {{ amount }} recovered {{ amount }} remitted {{ amount }} transactionIds
        invoice {{ status outstanding {{ amount }} }} advance {{ {ADVANCE} }} }} {ERRORS} }} }}"""
REPAY = f"""mutation($input: RepayAdvanceInput!) {{ repayAdvance(input: $input) {{ __typename
    ... on AdvanceRepaid {{ replayed amount {{ amount }} fee {{ amount }} principal {{ amount }}
        advance {{ {ADVANCE} }} }} {ERRORS} }} }}"""
DEFAULT = f"""mutation($input: DefaultAdvanceInput!) {{ defaultAdvance(input: $input) {{ __typename
    ... on AdvanceDefaulted {{ replayed principalToRecourse {{ amount }} feeToRecourse {{ amount }}
        advance {{ {ADVANCE} }} }} {ERRORS} }} }}"""
ADVANCE_Q = f"query($id: ID!) {{ advance(id: $id) {{ {ADVANCE} }} }}"
ADVANCES_Q = f"""query($supplierId: String, $status: AdvanceStatus, $first: Int, $after: String) {{
    advances(supplierId: $supplierId, status: $status, first: $first, after: $after) {{
        edges {{ cursor node {{ {ADVANCE} }} }} pageInfo {{ hasNextPage endCursor }} }} }}"""


def day(n: int) -> str:
    """n days from today, ISO."""
    return (TODAY + timedelta(days=n)).isoformat()


def call(api: Any, query: str, field: str, role: str = "operator", **input: Any) -> dict[str, Any]:
    return api.data(query, {"input": input}, role=role)[field]  # type: ignore[no-any-return]


def record(api: Any, no: str = "INV-1", supplier: str = "S1", amount: str = "100000000", issued: int = -40,
           due: int = 30) -> dict[str, Any]:
    return call(api, RECORD, "recordPurchaseInvoice", idempotencyKey=f"inv-{supplier}-{no}", supplierId=supplier,
                invoiceNo=no, amount=amount, dueDate=day(due), issuedOn=day(issued))


def advance_on(api: Any, no: str = "INV-1", supplier: str = "S1", on: int = -30, key: str | None = None) -> dict[str, Any]:
    return call(api, ADVANCE_ON, "advanceOnInvoice", idempotencyKey=key or f"adv-{supplier}-{no}", supplierId=supplier,
                invoiceNo=no, advanceRate="0.8", dailyFeeRate="0.00025", advancedOn=day(on))


def amounts(result: dict[str, Any], *names: str) -> tuple[int, ...]:
    return tuple(int(result[name]["amount"]) for name in names)


def assert_books_clean(conn: psycopg.Connection[Any]) -> None:
    lines = trial_balance(conn)
    assert sum(line.debit_balance for line in lines) == sum(line.credit_balance for line in lines)
    report = verify(conn, progress=None)
    assert report.ok, report.problems


def test_worked_example_thirty_days(api: Any, conn: psycopg.Connection[Any]) -> None:
    recorded = record(api)
    assert recorded["__typename"] == "PurchaseInvoiceRecorded" and recorded["invoice"]["status"] == "OPEN"
    made = advance_on(api)
    assert made["__typename"] == "AdvanceMade"
    advance = made["advance"]
    assert amounts(advance, "principal", "outstanding") == (80_000_000, 80_000_000)
    for n in range(-29, 1):
        run = call(api, ACCRUE, "accrueFactoringFees", date=day(n))
        assert (run["advancesAccrued"], run["fee"]["amount"]) == (1, "20000")
    again = call(api, ACCRUE, "accrueFactoringFees", date=day(0))
    assert (again["advancesAccrued"], again["fee"]["amount"]) == (0, "0")
    state = api.data(ADVANCE_Q, {"id": advance["id"]}, role="auditor")["advance"]
    assert amounts(state, "feeAccrued", "feePaid", "outstanding") == (600_000, 0, 80_600_000)
    assert (state["status"], state["daysOutstanding"]) == ("OPEN", 30)

    settled = call(api, SETTLE, "settleInvoice", idempotencyKey="pay-1", supplierId="S1", invoiceNo="INV-1")
    assert settled["__typename"] == "InvoiceSettled"
    assert amounts(settled, "paid", "fee", "principal", "remainder", "remitted") == (
        100_000_000, 600_000, 80_000_000, 19_400_000, 19_400_000)
    assert settled["invoice"]["status"] == "PAID"
    assert settled["advance"]["status"] == "SETTLED"
    assert amounts(settled["advance"], "feePaid", "outstanding") == (600_000, 0)
    replay = call(api, SETTLE, "settleInvoice", idempotencyKey="pay-1", supplierId="S1", invoiceNo="INV-1")
    assert replay["replayed"] is True and replay["transactionIds"] == settled["transactionIds"]
    assert_books_clean(conn)


def test_early_repayment_on_day_twelve(api: Any, conn: psycopg.Connection[Any]) -> None:
    record(api)
    advance = advance_on(api, on=-12)["advance"]
    too_much = call(api, REPAY, "repayAdvance", idempotencyKey="r0", advanceId=advance["id"], amount="80240001")
    assert too_much["__typename"] == "AmountExceedsOutstanding"
    repaid = call(api, REPAY, "repayAdvance", idempotencyKey="r1", advanceId=advance["id"], amount="80240000")
    assert repaid["__typename"] == "AdvanceRepaid"
    assert amounts(repaid, "amount", "fee", "principal") == (80_240_000, 240_000, 80_000_000)
    assert (repaid["advance"]["status"], repaid["advance"]["daysOutstanding"]) == ("REPAID", 12)
    closed = call(api, REPAY, "repayAdvance", idempotencyKey="r2", advanceId=advance["id"], amount="1")
    assert closed["__typename"] == "AdvanceNotOpen"
    assert_books_clean(conn)


def test_advance_refusals(api: Any, conn: psycopg.Connection[Any]) -> None:
    unknown = advance_on(api, "NOPE")
    assert (unknown["__typename"], unknown["code"]) == ("InvoiceNotFound", "INVOICE_NOT_FOUND")
    record(api)
    first = advance_on(api)
    assigned = advance_on(api, key="other-key")
    assert (assigned["__typename"], assigned["code"]) == ("InvoiceAlreadyAssigned", "INVOICE_ALREADY_ASSIGNED")
    replay = advance_on(api)
    assert replay["replayed"] is True and replay["advance"]["id"] == first["advance"]["id"]
    record(api, "INV-2")
    call(api, SETTLE, "settleInvoice", idempotencyKey="p2", supplierId="S1", invoiceNo="INV-2")
    paid = advance_on(api, "INV-2")
    assert (paid["__typename"], paid["code"]) == ("InvoiceAlreadyPaid", "INVOICE_ALREADY_PAID")
    again = call(api, SETTLE, "settleInvoice", idempotencyKey="p3", supplierId="S1", invoiceNo="INV-2")
    assert again["__typename"] == "InvoiceAlreadyPaid"
    record(api, "INV-3")
    bad_rate = call(api, ADVANCE_ON, "advanceOnInvoice", idempotencyKey="x", supplierId="S1", invoiceNo="INV-3",
                    advanceRate="1.5", dailyFeeRate="0.00025")
    assert bad_rate["__typename"] == "ValidationError"
    advances = conn.execute("select count(*) from ledger.factoring_advances").fetchone()
    for rates in [{"advanceRate": "0.8\n", "dailyFeeRate": "0.00025"}, {"advanceRate": " 0.8", "dailyFeeRate": "0.00025"},
                  {"advanceRate": "0.8", "dailyFeeRate": "0.00025 "},
                  {"advanceRate": "0.8", "dailyFeeRate": "0.0002500000000000000000000001"},
                  {"advanceRate": "0.8", "dailyFeeRate": "1e-999999999"}]:
        refused = api.data(ADVANCE_ON.replace(ERRORS, ERRORS + " ... on ValidationError { field }"),
                           {"input": {"idempotencyKey": "x", "supplierId": "S1", "invoiceNo": "INV-3", **rates}},
                           role="operator")["advanceOnInvoice"]
        field = "advanceRate" if rates["advanceRate"] != "0.8" else "dailyFeeRate"
        assert (refused["__typename"], refused["field"]) == ("ValidationError", field), (rates, refused)
    assert conn.execute("select count(*) from ledger.factoring_advances").fetchone() == advances
    duplicate = call(api, RECORD, "recordPurchaseInvoice", idempotencyKey="dup", supplierId="S1", invoiceNo="INV-1",
                     amount="5", dueDate=day(3))
    assert duplicate["__typename"] == "InvoiceAlreadyRecorded"
    denied = call(api, ADVANCE_ON, "advanceOnInvoice", role="auditor", idempotencyKey="y", supplierId="S1",
                  invoiceNo="INV-3", advanceRate="0.8", dailyFeeRate="0.00025")
    assert denied["__typename"] == "Forbidden"
    assert_books_clean(conn)


def test_partly_paid_invoice(api: Any, conn: psycopg.Connection[Any]) -> None:
    record(api)
    advance_on(api)
    part = call(api, SETTLE, "settleInvoice", idempotencyKey="p1", supplierId="S1", invoiceNo="INV-1",
                amount="50000000")
    assert amounts(part, "fee", "principal", "remainder") == (600_000, 49_400_000, 0)
    assert part["invoice"]["status"] == "PARTIALLY_PAID"
    assert (part["advance"]["status"], part["advance"]["principalOutstanding"]["amount"]) == ("OPEN", "30600000")
    over = call(api, SETTLE, "settleInvoice", idempotencyKey="p2", supplierId="S1", invoiceNo="INV-1",
                amount="50000001")
    assert over["__typename"] == "AmountExceedsOutstanding"
    rest = call(api, SETTLE, "settleInvoice", idempotencyKey="p3", supplierId="S1", invoiceNo="INV-1")
    assert amounts(rest, "paid", "fee", "principal", "remainder") == (50_000_000, 0, 30_600_000, 19_400_000)
    assert rest["advance"]["status"] == "SETTLED" and rest["invoice"]["status"] == "PAID"
    assert_books_clean(conn)


def test_default_then_recovery(api: Any, conn: psycopg.Connection[Any]) -> None:
    record(api, issued=-40, due=-5)
    advance = advance_on(api, on=-35)["advance"]
    call(api, SETTLE, "settleInvoice", idempotencyKey="p1", supplierId="S1", invoiceNo="INV-1", amount="30000000")
    defaulted = call(api, DEFAULT, "defaultAdvance", idempotencyKey="d1", advanceId=advance["id"])
    assert defaulted["__typename"] == "AdvanceDefaulted"
    assert amounts(defaulted, "principalToRecourse", "feeToRecourse") == (50_700_000, 0)
    assert defaulted["advance"]["status"] == "DEFAULTED"
    assert amounts(defaulted["advance"], "recourse", "feePaid", "outstanding") == (50_700_000, 700_000, 0)
    record(api, "INV-2", amount="60000000", issued=-1)
    later = call(api, SETTLE, "settleInvoice", idempotencyKey="p2", supplierId="S1", invoiceNo="INV-2")
    assert amounts(later, "recovered", "remitted") == (50_700_000, 9_300_000)
    record(api, "INV-3", issued=-1)
    fresh = advance_on(api, "INV-3", on=-1)["advance"]
    early = call(api, DEFAULT, "defaultAdvance", idempotencyKey="d2", advanceId=fresh["id"])
    assert early["__typename"] == "AdvanceNotOverdue"
    assert_books_clean(conn)


def test_listing_and_holder_visibility(api: Any) -> None:
    for n, supplier in enumerate(["S1", "S2", "S1", "S1"]):
        record(api, f"I{n}", supplier)
        advance_on(api, f"I{n}", supplier)
    call(api, SETTLE, "settleInvoice", idempotencyKey="p", supplierId="S1", invoiceNo="I0")
    page = api.data(ADVANCES_Q, {"supplierId": "S1", "first": 2}, role="auditor")["advances"]
    assert [e["node"]["invoiceNo"] for e in page["edges"]] == ["I0", "I2"] and page["pageInfo"]["hasNextPage"]
    rest = api.data(ADVANCES_Q, {"supplierId": "S1", "first": 2, "after": page["pageInfo"]["endCursor"]},
                    role="auditor")["advances"]
    assert [e["node"]["invoiceNo"] for e in rest["edges"]] == ["I3"] and not rest["pageInfo"]["hasNextPage"]
    open_ = api.data(ADVANCES_Q, {"status": "OPEN"}, role="auditor")["advances"]
    assert [e["node"]["invoiceNo"] for e in open_["edges"]] == ["I1", "I2", "I3"]
    mine = api.data(ADVANCES_Q, {}, role="holder", holder="S2")["advances"]
    assert [e["node"]["supplierId"] for e in mine["edges"]] == ["S2"]
    other = api.data(ADVANCES_Q, {"supplierId": "S1"}, role="holder", holder="S2")["advances"]
    assert other["edges"] == []
    s1_id = page["edges"][0]["node"]["id"]
    assert api.data(ADVANCE_Q, {"id": s1_id}, role="holder", holder="S2")["advance"] is None
    assert api.data(ADVANCE_Q, {"id": s1_id}, role="holder", holder="S1")["advance"]["id"] == s1_id
    assert api.data(ADVANCE_Q, {"id": "999999"}, role="auditor")["advance"] is None


def test_concurrent_advances_on_one_invoice(api: Any, conn: psycopg.Connection[Any]) -> None:
    record(api)
    api.token("operator")  # made before the race so both threads only post
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def attempt(n: int) -> None:
        barrier.wait()
        outcomes.append(advance_on(api, key=f"race-{n}")["__typename"])

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["AdvanceMade", "InvoiceAlreadyAssigned"]
    advances = api.data(ADVANCES_Q, {}, role="auditor")["advances"]["edges"]
    assert len(advances) == 1
    assert_books_clean(conn)
