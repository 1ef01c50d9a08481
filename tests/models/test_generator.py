"""The generator reproduces the reference network: counts, shapes, padding, init, export ops."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from echogen_trt.errors import ConfigError
from echogen_trt.models.factory import build_generator, count_parameters, generator_config
from echogen_trt.models.generator import EncoderDecoderGenerator, same_conv


def test_reference_size_has_the_reference_parameter_counts() -> None:
    g = EncoderDecoderGenerator()  # width 64, 256x256, no skips
    assert count_parameters(g) == (44_647_378, 8_832)
    assert len(g.down) == 7 and len(g.up) == 6


def test_reference_channels_and_bn_convention() -> None:
    g = EncoderDecoderGenerator()
    assert [b.conv.out_channels for b in g.down] == [64, 128, 256, 512, 512, 512, 512]
    assert [b.up.out_channels for b in g.up] == [512, 512, 512, 256, 128, 64]
    assert isinstance(g.down[0].bn, nn.Identity)  # no BN on d1
    bns = [m for m in g.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns and all(m.momentum == 0.2 and m.eps == 1e-3 for m in bns)


def _count_macs(model: nn.Module, x: torch.Tensor) -> int:
    macs = 0

    def hook(mod: nn.Module, inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        nonlocal macs
        k = mod.kernel_size[0] * mod.kernel_size[1]
        if isinstance(mod, nn.ConvTranspose2d):
            macs += inp[0].numel() * mod.out_channels * k
        else:
            macs += out.numel() * mod.in_channels * k

    handles = [
        m.register_forward_hook(hook)
        for m in model.modules()
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))
    ]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return macs


def test_reference_compute_is_8_59_gmac_per_frame() -> None:
    # Meta tensors: shapes only, no arithmetic, so the 256x256 count is instant.
    with torch.device("meta"):
        g = EncoderDecoderGenerator().eval()
        macs = _count_macs(g, torch.zeros(1, 1, 256, 256))
    assert round(macs / 1e9, 2) == 8.59


@pytest.mark.parametrize("size,n_down", [(64, 5), (32, 4), (256, 7)])
def test_depth_follows_image_size_and_output_is_a_sigmoid_image(size: int, n_down: int) -> None:
    g = EncoderDecoderGenerator(width=2, image_size=size)
    assert len(g.down) == n_down
    x = torch.randint(0, 4, (2, 1, size, size)).float()
    y = g(x)
    assert y.shape == (2, 1, size, size)
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0


def test_bottleneck_is_two_by_two() -> None:
    g = EncoderDecoderGenerator(width=2, image_size=64).eval()
    x = torch.zeros(1, 1, 64, 64)
    for block in g.down:
        x = block(x)
    assert x.shape[-2:] == (2, 2)


def test_same_conv_pads_one_before_two_after_like_tensorflow() -> None:
    conv = same_conv(1, 1)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0, 0, 0] = 1.0  # tap at kernel (0, 0): reads input (i-1, j-1)
        conv.bias.zero_()
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    y = conv(x)
    assert y.shape == x.shape
    assert torch.equal(y[0, 0, 1:, 1:], x[0, 0, :-1, :-1])
    assert torch.equal(y[0, 0, 0], torch.zeros(4))
    conv.weight.data.zero_()
    conv.weight.data[0, 0, 3, 3] = 1.0  # tap at kernel (3, 3): reads input (i+2, j+2)
    y = conv(x)
    assert torch.equal(y[0, 0, :2, :2], x[0, 0, 2:, 2:])
    assert torch.equal(y[0, 0, 2:], torch.zeros(2, 4))


def test_init_is_glorot_uniform_with_zero_biases() -> None:
    torch.manual_seed(0)
    g = EncoderDecoderGenerator(width=8, image_size=64)
    conv = g.down[1].conv  # 8 -> 16 channels, 4x4
    fan_in, fan_out = 8 * 16, 16 * 16
    bound = (6.0 / (fan_in + fan_out)) ** 0.5
    assert float(conv.weight.abs().max()) <= bound
    assert float(conv.weight.abs().max()) > 0.9 * bound
    assert all(float(m.bias.abs().max()) == 0.0 for m in g.modules() if isinstance(m, nn.Conv2d))


def test_skips_and_leaky_decoder_options() -> None:
    plain = EncoderDecoderGenerator(width=4, image_size=64)
    unet = EncoderDecoderGenerator(width=4, image_size=64, skips=True)
    assert count_parameters(unet)[0] > count_parameters(plain)[0]
    assert unet(torch.zeros(1, 1, 64, 64)).shape == (1, 1, 64, 64)
    leaky = EncoderDecoderGenerator(width=4, image_size=64, decoder_act="leaky")
    assert isinstance(leaky.up[0].act, nn.LeakyReLU) and isinstance(plain.up[0].act, nn.ReLU)


def test_is_deterministic_in_eval_mode() -> None:
    g = EncoderDecoderGenerator(width=4, image_size=64).eval()
    x = torch.randint(0, 4, (1, 1, 64, 64)).float()
    assert torch.equal(g(x), g(x))


def test_factory_builds_from_a_complete_model_config() -> None:
    cfg = generator_config(width=4, image_size=64)
    assert cfg == {
        "arch": "encoder_decoder",
        "in_channels": 1,
        "out_channels": 1,
        "width": 4,
        "image_size": 64,
        "skips": False,
        "decoder_act": "relu",
        "out_bias": 0.0,
        "upsample": "transpose",
    }
    g = build_generator(**cfg)
    assert isinstance(g, EncoderDecoderGenerator) and g.image_size == 64


def test_out_bias_sets_only_the_output_convs_initial_bias() -> None:
    torch.manual_seed(0)
    ref = EncoderDecoderGenerator(width=4, image_size=64)
    torch.manual_seed(0)
    shifted = EncoderDecoderGenerator(width=4, image_size=64, out_bias=-2.2)
    assert ref.out.bias.item() == 0.0 and shifted.out.bias.item() == pytest.approx(-2.2)
    for (name, a), (_, b) in zip(
        ref.state_dict().items(), shifted.state_dict().items(), strict=True
    ):
        if name != "out.bias":
            assert torch.equal(a, b), name  # same seed: every other weight is identical
    mask = torch.zeros(1, 1, 64, 64)
    with torch.no_grad():
        assert shifted.eval()(mask).mean() < ref.eval()(mask).mean()


def test_factory_errors_list_the_valid_names() -> None:
    with pytest.raises(ConfigError, match=r"unknown name 'resnet'.*encoder_decoder"):
        build_generator(arch="resnet")
    with pytest.raises(ConfigError, match=r"unknown option.*dropout.*width"):
        build_generator(dropout=0.5)
    with pytest.raises(ConfigError, match=r"decoder_act.*'gelu'.*relu, leaky"):
        build_generator(decoder_act="gelu")
    with pytest.raises(ConfigError, match=r"image_size.*100.*power of two"):
        build_generator(image_size=100)


def test_onnx_graph_uses_only_tensorrt_friendly_ops(tmp_path) -> None:
    onnx = pytest.importorskip("onnx")
    g = EncoderDecoderGenerator(width=2, image_size=32).eval()
    path = tmp_path / "g.onnx"
    # TorchScript exporter: opset 17 exactly (the dynamo exporter of torch 2.13 emits opset 18).
    torch.onnx.export(g, (torch.zeros(1, 1, 32, 32),), str(path), opset_version=17, dynamo=False)
    model = onnx.load(str(path))
    assert model.opset_import[0].version == 17
    ops = {n.op_type for n in model.graph.node}
    allowed = {"Conv", "ConvTranspose", "BatchNormalization", "LeakyRelu", "Relu", "Sigmoid"}
    allowed |= {"Identity"}  # weight pass-through, parsed by TensorRT
    assert {"Conv", "ConvTranspose", "Sigmoid"} <= ops
    assert ops <= allowed, ops - allowed


def test_resize_upsampling_replaces_every_transposed_conv() -> None:
    """upsample="resize" (an option against the dot grid): same sizes, no ConvTranspose2d left,
    and a constant mask gives a frame without the transposed convs' period-2 checkerboard."""
    torch.manual_seed(0)
    ref = build_generator(width=4, image_size=64).eval()
    torch.manual_seed(0)
    res = build_generator(width=4, image_size=64, upsample="resize").eval()
    assert any(isinstance(m, torch.nn.ConvTranspose2d) for m in ref.modules())
    assert not any(isinstance(m, torch.nn.ConvTranspose2d) for m in res.modules())
    mask = torch.ones(1, 1, 64, 64)
    with torch.no_grad():
        a, b = ref(mask)[0, 0], res(mask)[0, 0]
    assert a.shape == b.shape == (64, 64)

    def checker(x: torch.Tensor) -> float:  # energy at the Nyquist frequency of the centre
        c = x[16:48, 16:48] - x[16:48, 16:48].mean()
        return float(torch.fft.fft2(c).abs()[16, 16]) / float(c.abs().sum() + 1e-12)

    assert checker(b) < 0.5 * checker(a), (checker(a), checker(b))
    with pytest.raises(ConfigError, match="upsample"):
        build_generator(width=4, image_size=64, upsample="bilinear")
