"""demo.config.config_from_options: command-line options become a DemoConfig in the library."""

from __future__ import annotations

from pathlib import Path

import pytest

from echogen_trt.demo.config import DemoConfig, config_from_options
from echogen_trt.errors import ConfigError


def test_unset_options_keep_the_defaults() -> None:
    cfg = config_from_options(
        {"out": None, "width": None, "bench_batches": None},
        fresh=False, progress=True, bench_ceiling=True,
    )  # fmt: skip
    assert cfg == DemoConfig()


def test_options_are_converted_and_applied() -> None:
    cfg = config_from_options(
        {"out": Path("x/demo"), "width": 4, "bench_batches": "1, 2,"},
        fresh=True, progress=False, bench_ceiling=False,
    )  # fmt: skip
    assert (cfg.out, cfg.width, cfg.bench_batches) == ("x/demo", 4, (1, 2))
    assert (cfg.fresh, cfg.progress, cfg.bench_ceiling) == (True, False, False)


@pytest.mark.parametrize("text", ["1,x", "0", ","])
def test_bad_batch_lists_name_the_option(text: str) -> None:
    with pytest.raises(ConfigError, match="--bench-batches"):
        config_from_options({"bench_batches": text}, fresh=False, progress=True, bench_ceiling=True)
