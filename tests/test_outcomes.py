"""Per-example outcomes as text: the exact round trip, the format, malformed text; RunRecord's reading of them."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lrpilot import outcomes
from lrpilot.errors import LRPilotError
from lrpilot.records import RunRecord


@given(st.lists(st.booleans(), max_size=300))
def test_round_trip_is_exact_for_any_length(bits):
    correct = np.array(bits, dtype=bool)
    text = outcomes.encode(correct)
    back = outcomes.decode(text)
    assert text.startswith(f"{len(bits)}:") and back.dtype == np.bool_ and np.array_equal(back, correct)


def test_the_format_is_length_and_base64_of_packed_bits():
    assert outcomes.encode(np.array([True, False, True], dtype=bool)) == "3:oA=="  # 0b10100000
    assert outcomes.encode(np.zeros(0, dtype=bool)) == "0:"


@pytest.mark.parametrize("text", ["", "abc", "3:", "3:oA", "x:oA==", "-3:oA==", "9:oA==", "3:o@==", None, 3])
def test_malformed_text_is_refused(text):
    with pytest.raises(LRPilotError, match="malformed outcomes"):
        outcomes.decode(text)


@pytest.mark.parametrize("array", [np.array([1, 0]), np.zeros((2, 2), dtype=bool)])
def test_only_1d_bool_arrays_are_encoded(array):
    with pytest.raises(LRPilotError, match="1-D bool array"):
        outcomes.encode(array)


def _record(metrics, stored):
    return RunRecord(1, "t", "FIX(k0=0.1)", 0, 10, "ok", metrics, {}, {}, {}, None, 0.0, None, None, None,
                     outcomes=stored)


def test_a_record_decodes_its_outcomes_and_says_whether_it_has_validation():
    correct = np.array([True, False, True, True], dtype=bool)
    r = _record({"top1": 75.0, "val_top1": 50.0}, {"val": outcomes.encode(correct[:2]), "test": outcomes.encode(correct)})
    assert r.has_validation and np.array_equal(r.correct("test"), correct) and r.correct("val").tolist() == [True, False]
    old = _record({"top1": 75.0}, None)  # stored before schema v5
    assert not old.has_validation and old.correct("val") is None and not _record(None, None).has_validation
