"""Writing department files into the landing zone, with the faults real feeds have.

Row-level faults are injected while a file is written, so the row that ingestion must quarantine is
known exactly (rows counted from 1, header excluded). File-level faults are applied once every file
exists. Everything injected is recorded in `_truth/faults.csv`, which the pipeline never reads.
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from data_contracts.contracts import MAX_MONEY_FEN, Contract
from data_contracts.identifiers import corrupt_check_char

MANIFEST_COLUMNS = ["file", "source", "department", "period", "delivered_on", "format", "encoding", "rows", "bytes", "sha256"]
ROW_FAULTS = (
    "uscc_invalid", "firm_unknown", "key_null", "amount_negative", "amount_absurd",
    "period_future", "date_future", "duplicate_exact", "duplicate_conflict", "missing_month",
)
MASTER_SOURCES = {"registry", "banks", "loans"}
FILE_FAULTS = ("file_truncated", "column_missing", "column_renamed", "wrong_encoding")

_ARROW_TYPES = {
    "uscc": pa.string(), "text": pa.string(), "period": pa.string(), "date": pa.date32(),
    "int": pa.int64(), "money": pa.int64(), "float": pa.float64(), "bool": pa.bool_(),
}


def arrow_schema(contract: Contract) -> pa.Schema:
    return pa.schema([(c.name, _ARROW_TYPES[c.type]) for c in contract.columns])


def add_months(period: str, n: int) -> str:
    y, m = int(period[:4]), int(period[5:7])
    k = y * 12 + (m - 1) + n
    return f"{k // 12:04d}-{k % 12 + 1:02d}"


@dataclass
class Fault:
    source: str
    file: str
    row: int | None
    fault: str
    detail: str = ""


class LandingWriter:
    def __init__(self, out: Path, fault_rate: float, seed: int, unknown_usccs: np.ndarray):
        self.out = out
        self.fault_rate = fault_rate
        self.seed = seed
        self.unknown_usccs = unknown_usccs
        self._unknown_next = 0
        self.manifest: list[dict] = []
        self.faults: list[Fault] = []
        self._file_index = 0

    # -- row-level faults ------------------------------------------------------------------
    def _inject_row_faults(self, contract: Contract, df: pd.DataFrame, delivered_on: date,
                           rng: np.random.Generator) -> tuple[pd.DataFrame, list[tuple[int, str, str]]]:
        """Return the faulty frame and (row number, fault, detail) for every row to quarantine."""
        n = len(df)
        n_faults = int(rng.binomial(n, self.fault_rate)) if n else 0
        if n_faults == 0:
            return df, []
        money = [c.name for c in contract.columns if c.type == "money"]
        if contract.source in MASTER_SOURCES:
            # every other source is checked against these: a lost row would cascade, so only the
            # harmless fault (a second copy) is injected here
            classes = ["duplicate_exact"]
        else:
            classes = ["key_null", "duplicate_exact", "duplicate_conflict"]
        if contract.firm_column and contract.source not in MASTER_SOURCES:
            classes.append("uscc_invalid")
            classes.append("firm_unknown")
        if money and contract.source not in MASTER_SOURCES:
            classes += ["amount_negative", "amount_absurd"]
        if contract.source in MASTER_SOURCES:
            pass
        elif "period" in contract.column_names:
            classes += ["period_future", "missing_month"]
        elif contract.not_after_delivery:
            classes.append("date_future")
        n_faults = min(n_faults, n // 2)
        targets = rng.choice(n, size=n_faults, replace=False)
        kinds = rng.choice(classes, size=n_faults)
        df = df.copy()
        df["_fault"] = ""
        df["_order"] = np.arange(n, dtype=np.float64)
        extra: list[pd.DataFrame] = []
        drop: list[int] = []
        missing: list[str] = []
        key0 = contract.key[0]
        # the column a conflicting duplicate changes: never the key, the firm or a coded value
        # not another firm's USCC either (a receivable's core firm): altered, it is no USCC, not a conflict
        candidates = [c for c in contract.columns if c.name not in contract.key and c.name != contract.firm_column
                      and c.type != "uscc" and c.allowed is None and not c.nullable and c.max is None]
        conflict_column = candidates[0]
        for kind in classes:
            idx = targets[kinds == kind]
            if len(idx) == 0:
                continue
            col = df.columns.get_loc
            if kind == "uscc_invalid":
                df.iloc[idx, col(contract.firm_column)] = corrupt_check_char(df[contract.firm_column].to_numpy()[idx], rng)
            elif kind == "firm_unknown":
                # the pool of codes no firm holds is reused from its start once used up (a high fault rate)
                take = self.unknown_usccs[(self._unknown_next + np.arange(len(idx))) % len(self.unknown_usccs)]
                self._unknown_next += len(idx)
                df.iloc[idx, col(contract.firm_column)] = take
            elif kind == "key_null":
                df.iloc[idx, col(key0)] = None
            elif kind == "amount_negative":
                c = money[0]
                df.iloc[idx, col(c)] = -(df[c].to_numpy()[idx].astype(np.int64) + 100)
            elif kind == "amount_absurd":
                df.iloc[idx, col(money[-1])] = MAX_MONEY_FEN * 10
            elif kind == "period_future":
                df.iloc[idx, col("period")] = add_months(f"{delivered_on:%Y-%m}", 3)
            elif kind == "date_future":
                c = contract.not_after_delivery[0]
                df.iloc[idx, col(c)] = np.datetime64(delivered_on + timedelta(days=120), "s")
            elif kind == "missing_month":
                drop.extend(idx.tolist())
                keys = df[list(contract.key)].to_numpy()[idx]
                missing.extend(" ".join(f"{c}={v}" for c, v in zip(contract.key, row)) for row in keys)
                continue
            elif kind in ("duplicate_exact", "duplicate_conflict"):
                copies = df.iloc[idx].copy()
                if kind == "duplicate_conflict":
                    c = conflict_column
                    if c.type in ("money", "int", "float"):
                        copies[c.name] = copies[c.name].astype("float64").fillna(0).add(8).astype(df[c.name].dtype)
                    elif c.type == "date":
                        copies[c.name] = copies[c.name] - pd.Timedelta(days=1)
                    elif c.type == "bool":
                        copies[c.name] = ~copies[c.name].astype(bool)
                    else:
                        copies[c.name] = copies[c.name].astype(str) + "（更正）"
                    df.iloc[idx, col("_fault")] = kind
                # the copy lands somewhere after its original
                copies["_order"] = idx + rng.uniform(0.01, 1.0, len(idx)) * (n - idx)
                copies["_fault"] = kind
                extra.append(copies)
                continue
            df.iloc[idx, col("_fault")] = kind
        if drop:
            df = df.drop(index=df.index[drop])
        if extra:
            df = pd.concat([df, *extra], ignore_index=True)
        df = df.sort_values("_order", kind="stable").reset_index(drop=True)
        rows = [(int(i) + 1, f, "") for i, f in zip(np.flatnonzero(df["_fault"].to_numpy() != ""),
                                                    df["_fault"].to_numpy()[df["_fault"].to_numpy() != ""])]
        rows += [(0, "missing_month", d) for d in missing]
        return df.drop(columns=["_fault", "_order"]), rows

    # -- files -----------------------------------------------------------------------------
    def write(self, contract: Contract, label: str, delivered_on: date, df: pd.DataFrame) -> None:
        rng = np.random.default_rng([self.seed, 7, self._file_index])
        self._file_index += 1
        df = df[list(contract.column_names)]
        if self.fault_rate > 0:
            df, faults = self._inject_row_faults(contract, df, delivered_on, rng)
        else:
            faults = []
        ext = "parquet" if contract.file_format == "parquet" else "csv"
        rel = f"{contract.department}/{contract.source}/{contract.source}_{label}.{ext}"
        path = self.out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        table = pa.Table.from_pandas(df, schema=arrow_schema(contract), preserve_index=False)
        data = encode_table(table, contract.file_format, contract.encoding)
        path.write_bytes(data)
        self.manifest.append(manifest_entry(contract, rel, label, delivered_on, table.num_rows, data))
        for row, fault, detail in faults:
            self.faults.append(Fault(contract.source, rel, row or None, fault, detail))

    def apply_file_faults(self, contracts: dict[str, Contract]) -> None:
        """One file of each file-level class, on files whose loss does not cascade (never the
        registry, the bank list or the loan book), chosen deterministically."""
        if self.fault_rate <= 0:
            return
        rng = np.random.default_rng([self.seed, 11])
        spare = {"registry", "banks", "loans", "loan_applications", "loan_status", "loan_recoveries"}
        csv_files = [m for m in self.manifest if m["format"] == "csv" and m["source"] not in spare and m["rows"] > 5]
        gbk_files = [m for m in csv_files if m["encoding"] == "gbk"]
        used: set[str] = set()

        def pick(pools: list[list[dict]]) -> dict | None:
            """A file of the first pool with one from a source no fault has hit yet, else an unused
            file of the first pool with one (few sources are GBK), else none."""
            sources = {self._source_of(u) for u in used}
            fresh = [[m for m in pool if m["file"] not in used] for pool in pools]
            for pool in [*([m for m in f if m["source"] not in sources] for f in fresh), *fresh]:
                if pool:
                    chosen = pool[int(rng.integers(len(pool)))]
                    used.add(chosen["file"])
                    return chosen
            return None

        for fault in FILE_FAULTS:
            m = pick([gbk_files, csv_files] if fault == "wrong_encoding" else [csv_files])
            if m is None:
                continue
            path = self.out / m["file"]
            data = path.read_bytes()
            contract = contracts[m["source"]]
            if fault == "file_truncated":
                # cut mid-row: the manifest keeps what the department sent, the file is what arrived
                path.write_bytes(data[: int(len(data) * 0.6)])
                detail = f"cut to {int(len(data) * 0.6)} of {len(data)} bytes"
            else:
                text = data.decode(contract.encoding)
                header, _, body = text.partition("\n")
                names = next(csv.reader([header]))
                if fault == "column_missing":
                    victim = contract.column_names[-1]
                    frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False).drop(columns=[victim])
                    text = frame.to_csv(index=False, quoting=csv.QUOTE_NONNUMERIC)
                    detail = f"column {victim} missing"
                elif fault == "column_renamed":
                    victim = contract.column_names[-1]
                    names = [f"{n}_v2" if n == victim else n for n in names]
                    text = ",".join(f'"{n}"' for n in names) + "\n" + body
                    detail = f"column {victim} renamed {victim}_v2"
                else:
                    detail = f"delivered as UTF-8, declared {contract.encoding}"
                new = text.encode("utf-8" if contract.encoding == "gbk" else "gbk")
                path.write_bytes(new)
                m.update(bytes=len(new), sha256=hashlib.sha256(new).hexdigest())
            # the whole file is rejected: its row faults no longer apply
            self.faults = [f for f in self.faults if f.file != m["file"]]
            self.faults.append(Fault(m["source"], m["file"], None, fault, detail))

    def _source_of(self, rel: str) -> str:
        return rel.split("/")[1]

    def finish(self) -> None:
        manifest = pd.DataFrame(self.manifest, columns=MANIFEST_COLUMNS)
        manifest.to_csv(self.out / "manifest.csv", index=False)
        truth = self.out / "_truth"
        truth.mkdir(parents=True, exist_ok=True)
        faults = pd.DataFrame([f.__dict__ for f in self.faults], columns=["source", "file", "row", "fault", "detail"])
        faults["row"] = faults["row"].astype("Int64")
        faults.to_csv(truth / "faults.csv", index=False)


def manifest_entry(contract: Contract, file: str, period: str, delivered_on: date, rows: int, data: bytes) -> dict:
    return {"file": file, "source": contract.source, "department": contract.department, "period": period,
            "delivered_on": delivered_on.isoformat(), "format": contract.file_format, "encoding": contract.encoding,
            "rows": rows, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def deliver(landing: Path, contract: Contract, file: str, period: str, frame: pd.DataFrame, delivered_on: date) -> None:
    """A department delivers one more file into an existing landing zone: written as its contract
    says (format, encoding) and added to the manifest (a correction, the next night's deliveries)."""
    table = pa.Table.from_pandas(frame[list(contract.column_names)], schema=arrow_schema(contract), preserve_index=False)
    data = encode_table(table, contract.file_format, contract.encoding)
    (landing / file).parent.mkdir(parents=True, exist_ok=True)
    (landing / file).write_bytes(data)
    manifest = pd.read_csv(landing / "manifest.csv", dtype=str)
    entry = manifest_entry(contract, file, period, delivered_on, table.num_rows, data)
    pd.concat([manifest, pd.DataFrame([entry]).astype(str)]).to_csv(landing / "manifest.csv", index=False)


def encode_table(table: pa.Table, file_format: str, encoding: str) -> bytes:
    buf = io.BytesIO()
    if file_format == "parquet":
        pq.write_table(table, buf, compression="zstd")
        return buf.getvalue()
    pa_csv.write_csv(table, buf)
    data = buf.getvalue()
    return data if encoding == "utf-8" else data.decode("utf-8").encode(encoding)
