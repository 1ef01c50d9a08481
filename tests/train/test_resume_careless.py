"""Resume and seeds used carelessly (issue #22): a config.json holding `[]`, a non-UTF-8 byte
in metrics.jsonl, a seed past what numpy and torch accept. One line each, no traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from echogen_trt.errors import ConfigError
from echogen_trt.train.config import TrainConfig, check_config, previous_config, run_config
from echogen_trt.train.run_folder import trim_metrics


@pytest.mark.parametrize("content", [b"[]", b'"x"', b"\xff\xfe{}", b"[" * 100_000])
def test_resume_with_a_damaged_config_json_is_one_line(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "config.json").write_bytes(content)
    with pytest.raises(ConfigError, match=r"run config .*config\.json \| "):
        previous_config(tmp_path)
    with pytest.raises(ConfigError):
        run_config(None, {"out": str(tmp_path)}, resume=True)


def test_a_non_utf8_metrics_row_is_dropped_not_a_crash(tmp_path: Path) -> None:
    rows = [json.dumps({"step": s, "loss": 1.0}).encode() for s in (1, 2, 3)]
    (tmp_path / "metrics.jsonl").write_bytes(b"\n".join([rows[0], b"\xff\xfe garbage", *rows[1:]]))
    assert trim_metrics(tmp_path, 2) == 2  # the damaged row and step 3
    kept = (tmp_path / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(r)["step"] for r in kept] == [1, 2]


@pytest.mark.parametrize("seed", [10**20, -1, 2**32])
def test_a_seed_out_of_range_is_refused_before_any_work(seed: int) -> None:
    with pytest.raises(ConfigError, match=r"seed \| .*Expected an integer 0\.\.4294967295"):
        check_config(TrainConfig(seed=seed))
    check_config(TrainConfig(seed=2**32 - 1))


def test_evaluate_refuses_a_huge_seed_in_one_line(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from echogen_trt.cli import cli

    (tmp_path / "m.onnx").write_bytes(b"not needed: the seed is checked first")
    args = ["evaluate", "--data", str(tmp_path), "--model", str(tmp_path / "m.onnx")]
    result = CliRunner().invoke(cli, [*args, "--seed", str(10**20)])
    assert result.exit_code == 1 and "--seed | 100000000000000000000" in str(result.exception)
