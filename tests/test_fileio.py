"""fileio's JSON: strict (non-finite floats as null) and, for the committed records, rounded to a stated
number of significant digits so that last-digit noise (BLAS thread count) does not change the file."""

import json

import numpy as np

from refimpl import fileio, plotting


def test_floats_differing_past_the_12th_digit_write_the_same_text(tmp_path):
    a = {"sigma": [238.85004133496818, np.float64(0.16314689506647584)], "n": 3, "ok": True}
    b = {"sigma": [238.85004133496810, np.float64(0.16314689506647598)], "n": 3, "ok": True}
    pa = fileio.write_json(tmp_path / "a.json", a, digits=plotting.FIGURE_DIGITS)
    pb = fileio.write_json(tmp_path / "b.json", b, digits=plotting.FIGURE_DIGITS)
    assert pa.read_bytes() == pb.read_bytes()
    assert json.loads(pa.read_text()) == {"sigma": [238.850041335, 0.163146895066], "n": 3, "ok": True}


def test_rounding_keeps_the_stated_digits_and_strictness():
    text = fileio.dumps([1 / 3, float("nan"), -float("inf"), 1e-300, np.float32(0.1)], indent=None, digits=12)
    assert text == "[0.333333333333, null, null, 1e-300, 0.10000000149]"     # float32 0.1 = 0.100000001490…
    assert fileio.dumps([1 / 3], indent=None) == "[0.3333333333333333]"          # no digits: as is
