"""evaluate.run.eval_config: the command line's overrides applied in the library, not the CLI."""

from __future__ import annotations

from echogen_trt.evaluate.protocol import EvalConfig
from echogen_trt.evaluate.run import eval_config


def test_unset_options_keep_the_protocol_defaults() -> None:
    assert eval_config() == EvalConfig()


def test_options_override_the_segmenter_and_the_protocol() -> None:
    cfg = eval_config(seg_iters=7, seg_width=3, synthetic=False, use_cache=False, device="cpu")
    assert (cfg.segmenter.iters, cfg.segmenter.width) == (7, 3)
    assert cfg.segmenter.depth == EvalConfig().segmenter.depth
    assert (cfg.synthetic, cfg.use_cache, cfg.device) == (False, False, "cpu")
