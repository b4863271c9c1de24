"""Loan products, eligibility and matching, publication to the partner banks, deadlines, warnings, the
working-day calendar and the risk-compensation pool ledger (`lending.ledger`)."""
