"""The consumer-credit area's mutations, one module each (noun first), merged here."""

from __future__ import annotations

from graphql_api.credit.credit_day_run import CreditDayRunMutation
from graphql_api.credit.credit_line_open import CreditLineOpenMutation
from graphql_api.credit.loan_convert import LoanConvertMutation
from graphql_api.credit.loan_originate import LoanOriginateMutation
from graphql_api.credit.loan_pay_off import LoanPayOffMutation
from graphql_api.credit.loan_purchase import LoanPurchaseMutation
from graphql_api.credit.loan_recover import LoanRecoverMutation
from graphql_api.credit.loan_repay import LoanRepayMutation
from graphql_api.credit.settings import CreditSettingsMutation

__all__ = ["CREDIT_MUTATIONS"]

CREDIT_MUTATIONS: list[type] = [
    CreditLineOpenMutation,
    LoanPurchaseMutation,
    LoanConvertMutation,
    LoanOriginateMutation,
    LoanRepayMutation,
    LoanPayOffMutation,
    LoanRecoverMutation,
    CreditDayRunMutation,
    CreditSettingsMutation,
]
