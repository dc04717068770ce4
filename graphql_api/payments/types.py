"""Payment, ClientMoney and the onboarding results, the payment area's error types, and the
helpers its mutations share (who may post, step results)."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import TypedDict

import strawberry
from strawberry.types import Info

from graphql_api.context import principal_of
from graphql_api.core.types import Account, Money, PageInfo
from graphql_api.errors import LedgerErrorType, register_error
from graphql_api.scalars import JSON, MinorUnits
from ledger.products import onboarding as core_onboarding
from ledger.products import payments as core_payments
from ledger.tokens import Role

__all__ = [
    "POSTERS", "ONBOARDERS", "READERS", "PaymentStatus", "Payment", "PaymentEdge", "PaymentConnection",
    "ClientMoney", "PaymentStepDone", "visible_payment", "money",
    "PaymentNotFound", "RefundExceedsCaptured", "CaptureExceedsAuthorized", "ChargebackNotAllowed",
    "BankNotFound", "NotOnboarded", "PAYMENT_ERRORS", "Onboarded",
]

POSTERS = (Role.OPERATOR, Role.ADMIN)
# Onboarding creates accounts of a fixed shape only, so operators may do it as well as admins.
ONBOARDERS = (Role.OPERATOR, Role.ADMIN)
READERS = (Role.ADMIN, Role.OPERATOR, Role.AUDITOR)


def money(amount_fen: int, currency: str = "CNY") -> Money:
    return Money(amount=MinorUnits(int(amount_fen)), currency=currency)


@strawberry.enum
class PaymentStatus(enum.Enum):
    AUTHORIZED = "AUTHORIZED"
    CAPTURED = "CAPTURED"
    PARTIALLY_REFUNDED = "PARTIALLY_REFUNDED"
    REFUNDED = "REFUNDED"
    VOIDED = "VOIDED"
    EXPIRED = "EXPIRED"


@strawberry.type(description="A payment; every amount is derived from the journal, never stored.")
class Payment:
    id: strawberry.ID
    customer_id: str
    merchant_id: str
    status: PaymentStatus
    authorized: Money
    captured: Money
    refunded: Money
    fee: Money = strawberry.field(description="The merchant's fee charged at capture.")
    fee_refunded: Money = strawberry.field(description="Fee given back to the merchant with refunds.")
    charged_back: Money
    refundable: Money = strawberry.field(description="Captured minus refunded minus charged back.")
    fee_rate: str = strawberry.field(description="The merchant's fee rate when the payment was authorized.")
    refund_fee_pro_rata: bool
    hold_id: strawberry.ID
    capture_transaction_id: strawberry.ID | None
    expires_at: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, row: core_payments.Payment) -> Payment:
        c = row.currency
        return cls(
            id=strawberry.ID(str(row.id)), customer_id=row.customer_id, merchant_id=row.merchant_id,
            status=PaymentStatus(row.status.value), authorized=money(row.authorized_fen, c),
            captured=money(row.captured_fen, c), refunded=money(row.refunded_fen, c), fee=money(row.fee_fen, c),
            fee_refunded=money(row.fee_refunded_fen, c), charged_back=money(row.charged_back_fen, c),
            refundable=money(row.refundable_fen, c), fee_rate=format(row.fee_rate, "f"),
            refund_fee_pro_rata=row.refund_fee_pro_rata, hold_id=strawberry.ID(str(row.hold_id)),
            capture_transaction_id=None if row.capture_id is None else strawberry.ID(str(row.capture_id)),
            expires_at=row.expires_at, created_at=row.created_at)


def visible_payment(info: Info, row: core_payments.Payment | None) -> bool:
    """Holders see the payments they paid or received; other roles see all."""
    if row is None:
        return False
    principal = principal_of(info)
    return principal.may_see_holder(row.customer_id) or principal.may_see_holder(row.merchant_id)


@strawberry.type
class PaymentEdge:
    cursor: str
    node: Payment


@strawberry.type
class PaymentConnection:
    edges: list[PaymentEdge]
    page_info: PageInfo


@strawberry.type(description="Client-money reserves against the client liabilities they must cover.")
class ClientMoney:
    as_of: datetime | None
    reserves: Money
    wallets: Money
    merchant_payables: Money
    supplier_payables: Money
    fund_subscriptions_owed: Money
    liabilities: Money
    difference: Money = strawberry.field(
        description="Reserves minus liabilities: positive is own money in the reserves, negative a shortfall.")

    @classmethod
    def of(cls, row: core_payments.ClientMoney) -> ClientMoney:
        c = row.currency
        return cls(as_of=row.as_of, reserves=money(row.reserves_fen, c), wallets=money(row.wallets_fen, c),
                   merchant_payables=money(row.merchants_fen, c), supplier_payables=money(row.suppliers_fen, c),
                   fund_subscriptions_owed=money(row.fund_subscriptions_fen, c),
                   liabilities=money(row.liabilities_fen, c), difference=money(row.difference_fen, c))


@strawberry.interface(description="The payment after a step, the step's transaction, and whether it was a replay.")
class PaymentStepDone:
    payment: Payment
    transaction_id: strawberry.ID
    replayed: bool


@strawberry.type(description="The party's accounts; `created` is false when nothing was new.")
class Onboarded:
    party_id: str
    accounts: list[Account]
    created: bool

    @staticmethod
    def fields(row: core_onboarding.Onboarded) -> OnboardedFields:
        return {"party_id": row.party_id, "accounts": [Account.of(a) for a in row.accounts],
                "created": row.created}


class OnboardedFields(TypedDict):
    """Onboarded's fields as keyword arguments, typed so that each subclass's call is checked."""
    party_id: str
    accounts: list[Account]
    created: bool


class StepFields(TypedDict):
    """PaymentStepDone's fields as keyword arguments, typed so that each subclass's call is checked."""
    payment: Payment
    transaction_id: strawberry.ID
    replayed: bool


def step_fields(step: core_payments.PaymentStep) -> StepFields:
    return {"payment": Payment.of(step.payment), "transaction_id": strawberry.ID(str(step.transaction_id)),
            "replayed": step.replayed}


def optional_id(value: int | None) -> strawberry.ID | None:
    return None if value is None else strawberry.ID(str(value))


# Errors ----------------------------------------------------------------------------------------------

@strawberry.type(description="No payment with this id (or none the caller may see).")
class PaymentNotFound(LedgerErrorType):
    details: JSON


@strawberry.type(description="A refund would return more than captured minus refunded and charged back.")
class RefundExceedsCaptured(LedgerErrorType):
    details: JSON


@strawberry.type(description="A capture asked for more than the authorization holds.")
class CaptureExceedsAuthorized(LedgerErrorType):
    details: JSON


@strawberry.type(description="A chargeback needs a captured payment whose merchant was settled since.")
class ChargebackNotAllowed(LedgerErrorType):
    details: JSON


@strawberry.type(description="No client-money reserve at this bank: it has taken no top-up yet.")
class BankNotFound(LedgerErrorType):
    details: JSON


@strawberry.type(description="The customer, merchant or supplier is not onboarded.")
class NotOnboarded(LedgerErrorType):
    details: JSON


register_error(core_payments.PaymentNotFound, PaymentNotFound)
register_error(core_payments.RefundExceedsCaptured, RefundExceedsCaptured)
register_error(core_payments.CaptureExceedsAuthorized, CaptureExceedsAuthorized)
register_error(core_payments.ChargebackNotAllowed, ChargebackNotAllowed)
register_error(core_payments.BankNotFound, BankNotFound)
register_error(core_onboarding.NotOnboarded, NotOnboarded)

PAYMENT_ERRORS: tuple[type, ...] = (PaymentNotFound, NotOnboarded)
