"""The payment area's mutations, one module each (noun first), merged here."""

from __future__ import annotations

from graphql_api.payments.chargeback_write_off import ChargebackWriteOffMutation
from graphql_api.payments.client_money_sweep import ClientMoneySweepMutation
from graphql_api.payments.customer_onboard import CustomerOnboardMutation
from graphql_api.payments.merchant_onboard import MerchantOnboardMutation
from graphql_api.payments.merchant_settle import MerchantSettleMutation
from graphql_api.payments.payment_authorize import PaymentAuthorizeMutation
from graphql_api.payments.payment_capture import PaymentCaptureMutation
from graphql_api.payments.payment_chargeback import PaymentChargebackMutation
from graphql_api.payments.payment_refund import PaymentRefundMutation
from graphql_api.payments.payment_void import PaymentVoidMutation
from graphql_api.payments.supplier_onboard import SupplierOnboardMutation
from graphql_api.payments.top_ups_settle import TopUpsSettleMutation
from graphql_api.payments.wallet_top_up import WalletTopUpMutation

__all__ = ["PAYMENTS_MUTATIONS"]

PAYMENTS_MUTATIONS: list[type] = [
    CustomerOnboardMutation,
    MerchantOnboardMutation,
    SupplierOnboardMutation,
    WalletTopUpMutation,
    TopUpsSettleMutation,
    PaymentAuthorizeMutation,
    PaymentCaptureMutation,
    PaymentVoidMutation,
    PaymentRefundMutation,
    PaymentChargebackMutation,
    MerchantSettleMutation,
    ChargebackWriteOffMutation,
    ClientMoneySweepMutation,
]
