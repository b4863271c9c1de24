"""Data contracts: one declaration per department source.

Each contract drives three things from the same definition: the simulator's file layout, the
row-level quarantine rules that ingestion runs in DuckDB SQL, and the Great Expectations suite that
documents and checks every staged batch. Never imports dagster or models.
"""

from data_contracts.contracts import CONTRACTS, Column, Contract, contract_for

__all__ = ["CONTRACTS", "Column", "Contract", "contract_for"]
