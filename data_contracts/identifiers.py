"""Identifiers: the USCC (GB 32100-2015) and the resident ID (GB 11643), vectorised for simulation.

Single values are validated with python-stdnum (`stdnum.cn.uscc`); bulk validation inside DuckDB
uses the SQL macro `uscc_valid`, which implements the same algorithm and is tested against stdnum.
"""

from __future__ import annotations

import re

import numpy as np
from stdnum.cn import uscc as stdnum_uscc

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = np.array([pow(3, i, 31) for i in range(17)], dtype=np.int64)
_ORG_WEIGHTS = np.array([3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
_RIC_WEIGHTS = np.array([pow(2, 17 - i, 11) for i in range(17)], dtype=np.int64)


class InvalidUSCC(ValueError):
    """A USCC that fails GB 32100-2015 (length, character set or check character)."""


def validate_uscc(code: str) -> str:
    """Return the compact USCC or raise InvalidUSCC saying what is wrong with it."""
    try:
        return stdnum_uscc.validate(code)
    except Exception as exc:  # stdnum raises its own ValidationError subclasses
        raise InvalidUSCC(f"{code!r} is not a valid unified social credit code: {exc}") from None


def uscc_check_char(first17: str) -> str:
    return stdnum_uscc.calc_check_digit(first17)


def _digits_matrix(values: np.ndarray, width: int) -> np.ndarray:
    """(n,) non-negative ints -> (n, width) decimal digits, most significant first."""
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return (values[:, None] // powers) % 10


def make_uscc(division_codes: np.ndarray, org_bodies: np.ndarray) -> np.ndarray:
    """Build valid USCCs: '9' (market regulator) '1' (enterprise), 6-digit division code,
    9-character organisation code (8 digits + GB 11714 check), USCC check character."""
    n = len(org_bodies)
    body = _digits_matrix(org_bodies.astype(np.int64), 8)
    org_check = 11 - (body @ _ORG_WEIGHTS) % 11
    org_char = np.where(org_check == 10, 33, np.where(org_check == 11, 0, org_check))  # 33 = 'X' in 0-9A-Z
    division = _digits_matrix(division_codes.astype(np.int64), 6)
    values = np.empty((n, 17), dtype=np.int64)
    values[:, 0] = 9
    values[:, 1] = 1
    values[:, 2:8] = division
    values[:, 8:16] = body
    # 'X' has value 28 in the USCC alphabet
    values[:, 16] = np.where(org_char == 33, USCC_ALPHABET.index("X"), org_char)
    check = (31 - (values @ USCC_WEIGHTS) % 31) % 31
    alphabet = np.array(list(USCC_ALPHABET))
    chars = alphabet[np.concatenate([values, check[:, None]], axis=1)]
    return np.array(["".join(row) for row in chars], dtype=object)


def corrupt_check_char(codes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Replace each code's check character by a different valid symbol (an invalid USCC)."""
    out = []
    for code in codes:
        right = USCC_ALPHABET.index(code[17])
        wrong = (right + int(rng.integers(1, 31))) % 31
        out.append(code[:17] + USCC_ALPHABET[wrong])
    return np.array(out, dtype=object)


def make_resident_ids(region_codes: np.ndarray, birth_yyyymmdd: np.ndarray, seq: np.ndarray) -> np.ndarray:
    """Valid 18-character resident identity numbers (GB 11643, ISO 7064 MOD 11-2 check)."""
    digits = np.concatenate(
        [_digits_matrix(region_codes, 6), _digits_matrix(birth_yyyymmdd, 8), _digits_matrix(seq, 3)], axis=1
    )
    check = (12 - (digits @ _RIC_WEIGHTS) % 11) % 11
    check_chars = np.where(check == 10, "X", check.astype(str))
    return np.array(["".join(map(str, d)) + c for d, c in zip(digits, check_chars)], dtype=object)


# what does not count as a character of a name: every Unicode blank (`张　三` is a two-character name
# padded with an ideographic space) and the invisible format characters (zero-width, bidirectional)
NAME_BLANK_RANGES = ((0x09, 0x0D), (0x20, 0x20), (0x85, 0x85), (0xA0, 0xA0), (0x1680, 0x1680), (0x2000, 0x200F),
                     (0x2028, 0x202F), (0x205F, 0x206F), (0x3000, 0x3000), (0xFEFF, 0xFEFF))
NAME_BLANKS = re.compile("[" + "".join(f"\\u{a:04x}-\\u{b:04x}" for a, b in NAME_BLANK_RANGES) + "]")
NAME_BLANKS_RE2 = "[" + "".join(f"\\x{{{a:04X}}}-\\x{{{b:04X}}}" for a, b in NAME_BLANK_RANGES) + "]"  # DuckDB's


def mask_name(name: str | None) -> str | None:
    """张三明 -> 张*明, 张三 -> 张*: enough for a bank to recognise, not to identify."""
    if name is None or len(name) == 0:
        return name
    name = NAME_BLANKS.sub("", name)
    if len(name) == 1:
        return "*"
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


USCC_SQL_MACROS = f"""
CREATE OR REPLACE MACRO uscc_value(c) AS instr('{USCC_ALPHABET}', c) - 1;
CREATE OR REPLACE MACRO uscc_valid(s) AS
    s IS NOT NULL AND length(s) = 18
    AND regexp_full_match(s, '[0-9]{{8}}[0-9A-HJ-NP-RTUW-Y]{{10}}')  -- positions 1-8 are digits, as GB 32100 and stdnum require
    AND (31 - ({' + '.join(f'uscc_value(s[{i + 1}]) * {int(w)}' for i, w in enumerate(USCC_WEIGHTS))}) % 31) % 31
        = uscc_value(s[18]);
"""
