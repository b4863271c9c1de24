import duckdb
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum.cn import ric, uscc

from data_contracts.identifiers import (
    USCC_ALPHABET,
    USCC_SQL_MACROS,
    InvalidUSCC,
    corrupt_check_char,
    make_resident_ids,
    make_uscc,
    mask_name,
    validate_uscc,
)


def test_generated_uscc_are_valid_and_chongqing():
    codes = make_uscc(np.array([500103, 500112, 500156]), np.array([12345678, 600037, 99999999]))
    assert all(uscc.is_valid(c) for c in codes)
    assert [c[2:8] for c in codes] == ["500103", "500112", "500156"]


def test_published_examples_and_corruption():
    for good in ("91110000600037341L", "91110108551385082Q", "91350100M000100Y43"):
        assert validate_uscc(good) == good
    bad = corrupt_check_char(np.array(["91110000600037341L"]), np.random.default_rng(1))[0]
    assert bad != "91110000600037341L" and bad[:17] == "91110000600037341"
    try:
        validate_uscc(bad)
    except InvalidUSCC as exc:
        assert bad in str(exc)
    else:
        raise AssertionError("corrupted code accepted")


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=USCC_ALPHABET + "IOSVZ-", min_size=16, max_size=19))
def test_sql_macro_agrees_with_stdnum(code):
    con = duckdb.connect()
    con.execute(USCC_SQL_MACROS)
    assert con.execute("SELECT uscc_valid(?)", [code]).fetchone()[0] == uscc.is_valid(code)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 99_999_999), st.sampled_from([500101, 500103, 500112, 500156]))
def test_sql_macro_accepts_every_generated_code(body, district):
    code = make_uscc(np.array([district]), np.array([body]))[0]
    con = duckdb.connect()
    con.execute(USCC_SQL_MACROS)
    assert con.execute("SELECT uscc_valid(?)", [code]).fetchone()[0]


def test_resident_id_check_digit_matches_the_standard():
    assert make_resident_ids(np.array([110105]), np.array([19491231]), np.array([2]))[0] == "11010519491231002X"
    ids = make_resident_ids(np.array([110101] * 28), np.arange(19700101, 19700129), np.arange(28))
    assert all(ric.is_valid(i) for i in ids)


def test_mask_name():
    assert mask_name("张三明") == "张*明"
    assert mask_name("张三") == "张*"
    assert mask_name("欧阳小明") == "欧**明"


def test_letters_in_the_first_eight_positions_are_refused_like_stdnum():
    con = duckdb.connect()
    con.execute(USCC_SQL_MACROS)
    code = "P7W3RJQ9MW5PG3YATC"  # a correct check character, but letters where GB 32100 has digits
    assert not uscc.is_valid(code)
    assert con.execute("SELECT uscc_valid(?)", [code]).fetchone()[0] is False
