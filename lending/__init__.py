"""Loan products, eligibility and matching, publication to the partner banks."""
