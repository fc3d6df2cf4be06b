from __future__ import annotations

import datetime as dt
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from timebank.lib import crypto, idnumber
from timebank.lib.masking import mask_phone

born = st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2025, 12, 31))


@given(born=born, seed=st.integers(0, 10**6), male=st.booleans())
def test_made_numbers_validate_and_carry_birth_date(born: dt.date, seed: int, male: bool) -> None:
    number = idnumber.make("370405", born, random.Random(seed), male=male)
    assert idnumber.normalise(number) == number
    assert idnumber.birth_date(number) == born
    assert (int(number[16]) % 2 == 1) == male


@given(born=born, seed=st.integers(0, 10**6), pos=st.integers(0, 16), delta=st.integers(1, 9))
def test_any_single_digit_change_is_caught(born: dt.date, seed: int, pos: int, delta: int) -> None:
    number = idnumber.make("370405", born, random.Random(seed), male=True)
    digit = (int(number[pos]) + delta) % 10
    changed = number[:pos] + str(digit) + number[pos + 1 :]
    with pytest.raises(idnumber.IdNumberError):
        idnumber.normalise(changed)


def test_known_number_with_x_check_digit() -> None:
    assert idnumber.normalise("11010519491231002x") == "11010519491231002X"
    with pytest.raises(idnumber.IdNumberError) as exc:
        idnumber.normalise("110105194912310021")
    assert exc.value.reason == "checksum"
    for bad, reason in (
        ("1101051949123100", "length"),
        ("11010519491331002X", "birth_date"),
        ("1101051949123100AX", "characters"),
    ):
        with pytest.raises(idnumber.IdNumberError) as exc:
            idnumber.normalise(bad)
        assert exc.value.reason == reason


def test_masks() -> None:
    assert idnumber.mask("370405195503011234") == "3704**********1234"
    assert mask_phone("13812345678") == "138****5678"


def test_encryption_round_trip_and_rotation(settings: object) -> None:
    from cryptography.fernet import Fernet

    token = crypto.encrypt("370405195503011234")
    assert "370405" not in token
    assert crypto.decrypt(token) == "370405195503011234"
    old_keys = list(settings.FIELD_ENCRYPTION_KEYS)  # type: ignore[attr-defined]
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode(), *old_keys]  # type: ignore[attr-defined]
    crypto.reset_cache()
    try:
        rotated = crypto.rotate(token)
        assert crypto.decrypt(rotated) == "370405195503011234"
        settings.FIELD_ENCRYPTION_KEYS = [settings.FIELD_ENCRYPTION_KEYS[0]]  # type: ignore[attr-defined]
        crypto.reset_cache()
        assert crypto.decrypt(rotated) == "370405195503011234"
        with pytest.raises(ValueError):
            crypto.decrypt(token)
    finally:
        settings.FIELD_ENCRYPTION_KEYS = old_keys  # type: ignore[attr-defined]
        crypto.reset_cache()


def test_keyed_hash_is_stable_and_keyed(settings: object) -> None:
    a = crypto.keyed_hash("x", scope="id_number")
    assert a == crypto.keyed_hash("x", scope="id_number")
    settings.FIELD_HASH_KEY = "another"  # type: ignore[attr-defined]
    assert crypto.keyed_hash("x", scope="id_number") != a
