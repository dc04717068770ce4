"""Consumer credit in GraphQL: credit lines, purchases, instalments, loans, repayments, the daily job."""
