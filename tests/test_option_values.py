"""The shared option-value parsers: every command reads `1,8`, `a,b` and `480x640` alike."""

from __future__ import annotations

import pytest

from echogen_trt.errors import ConfigError
from echogen_trt.option_values import parse_ints, parse_names, parse_size


def test_parse_ints() -> None:
    assert parse_ints("1, 8,32,", "--batch") == (1, 8, 32)
    for bad in ("", ",", "1,x", "0", "2,-1"):
        with pytest.raises(ConfigError, match="--batch"):
            parse_ints(bad, "--batch")


def test_parse_names() -> None:
    assert parse_names(" onnxrt:cpu ,torch,") == ("onnxrt:cpu", "torch")
    assert parse_names("2ch, 4ch", upper=True) == ("2CH", "4CH")
    assert parse_names(None) is None and parse_names("") is None


def test_parse_size() -> None:
    assert parse_size("480x640", "--mask-size") == (480, 640)
    assert parse_size(" 256 ", "--mask-size") == (256, 256)
    for bad in ("big", "0", "10x0", "10x", "x10"):
        with pytest.raises(ConfigError, match="--mask-size"):
            parse_size(bad, "--mask-size")
