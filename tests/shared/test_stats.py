import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.stats import percentile


def test_percentile_interpolates_between_ranks():
    assert percentile([1, 2, 3, 4], 50) == pytest.approx(2.5)
    assert percentile([10], 95) == 10


def test_percentile_of_nothing_is_an_error():
    with pytest.raises(ValueError):
        percentile([], 50)


@given(
    st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=50),
    st.floats(0, 100),
)
def test_percentile_agrees_with_numpy(values, pct):
    assert percentile(values, pct) == pytest.approx(float(np.percentile(values, pct)), abs=1e-6)
