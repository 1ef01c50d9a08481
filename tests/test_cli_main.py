"""The CLI shell: version, lazy help, the error channel, doctor, TensorRT detection."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from collections.abc import Callable
from typing import Any

import click
import pytest
from click.testing import CliRunner

from echogen_trt import __version__
from echogen_trt import cli as cli_mod
from echogen_trt.errors import ConfigError
from echogen_trt.runtime import availability


def test_version() -> None:
    result = CliRunner().invoke(cli_mod.cli, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.output


def test_help_lists_every_command_without_importing_torch() -> None:
    code = (
        "import sys; from echogen_trt.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    for name in cli_mod.COMMANDS:
        assert name in out
    assert out.strip().endswith("NO-TORCH")


def test_every_registered_command_resolves_to_a_click_command() -> None:
    group = cli_mod.cli
    ctx = click.Context(group)
    for name in cli_mod.COMMANDS:
        cmd = group.get_command(ctx, name)
        assert isinstance(cmd, click.Command), name
        result = CliRunner().invoke(group, [name, "--help"])
        assert result.exit_code == 0, (name, result.output)
        assert "Usage:" in result.output


def test_user_error_becomes_one_line_and_exit_1(monkeypatch, capsys) -> None:
    @click.command("boom")
    def boom() -> None:
        raise ConfigError("option --x | bad. Hint: fix it")

    module = types.ModuleType("fake_boom")
    module.boom = boom  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fake_boom", module)
    monkeypatch.setitem(cli_mod.COMMANDS, "boom", ("fake_boom", "boom", "raises"))
    with pytest.raises(SystemExit) as exc:
        cli_mod.main(["boom"])
    assert exc.value.code == 1
    err = capsys.readouterr().err
    assert err.strip() == "error: option --x | bad. Hint: fix it"


def test_bug_keeps_its_traceback(monkeypatch) -> None:
    @click.command("bug")
    def bug() -> None:
        raise ZeroDivisionError("bug")

    module = types.ModuleType("fake_bug")
    module.bug = bug  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fake_bug", module)
    monkeypatch.setitem(cli_mod.COMMANDS, "bug", ("fake_bug", "bug", "raises"))
    with pytest.raises(ZeroDivisionError):
        cli_mod.main(["bug"])


@pytest.mark.parametrize(
    ("command", "missing", "extra"),
    [
        ("export", "onnx", "train"),
        ("bench", "onnx", "onnx"),
        ("synth", "SimpleITK", "medical"),
        ("bench", "torch", "train"),  # a backend's package: its record's install hint
    ],
)
def test_a_package_an_extra_provides_is_one_line_naming_it(
    monkeypatch, capsys, command: str, missing: str, extra: str
) -> None:
    """The base install leaves the extras out (issue 23): no traceback, the extra to install."""

    @click.command(command)
    def needs() -> None:
        raise ModuleNotFoundError(f"No module named '{missing}'", name=missing)

    module = types.ModuleType("fake_needs")
    module.needs = needs  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fake_needs", module)
    monkeypatch.setitem(cli_mod.COMMANDS, command, ("fake_needs", "needs", "needs an extra"))
    with pytest.raises(SystemExit) as exc:
        cli_mod.main([command])
    assert exc.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {missing} | not installed, and this command needs it. Hint: ")
    assert f"pip install 'echogen-trt[{extra}]'" in err and err.count("\n") == 1


def test_a_module_no_extra_provides_keeps_its_traceback(monkeypatch) -> None:
    @click.command("bug")
    def bug() -> None:
        raise ModuleNotFoundError("No module named 'echogen_trt.gone'", name="echogen_trt.gone")

    module = types.ModuleType("fake_bug")
    module.bug = bug  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fake_bug", module)
    monkeypatch.setitem(cli_mod.COMMANDS, "bug", ("fake_bug", "bug", "raises"))
    with pytest.raises(ModuleNotFoundError):
        cli_mod.main(["bug"])


def test_doctor_json_reports_each_component() -> None:
    result = CliRunner().invoke(cli_mod.cli, ["doctor", "--json"])
    assert result.exit_code == 0, result.output
    checks = {c["name"]: c for c in json.loads(result.output)["checks"]}
    for name in ("python", "torch", "onnxruntime", "tensorrt", "gpu", "medical I/O"):
        assert name in checks
    trt_ok = availability.tensorrt_module() is not None
    assert checks["tensorrt"]["ok"] is trt_ok
    if not trt_ok:
        assert "pip install" in checks["tensorrt"]["fix"] and "JetPack" in checks["tensorrt"]["fix"]
    assert checks["onnxruntime"]["ok"] and "CPUExecutionProvider" in checks["onnxruntime"]["detail"]
    assert checks["openvino"]["ok"] is availability.has_module("openvino")
    if checks["openvino"]["ok"]:
        assert "devices: CPU" in checks["openvino"]["detail"]
    else:
        assert "echogen-trt[openvino]" in checks["openvino"]["fix"]


def test_doctor_text_names_what_is_missing() -> None:
    result = CliRunner().invoke(cli_mod.cli, ["doctor"])
    assert result.exit_code == 0
    if availability.tensorrt_module() is None:
        assert "disables: build-engine" in result.output


def test_tensorrt_stub_namespace_is_not_mistaken_for_tensorrt(tmp_path, monkeypatch) -> None:
    stub = tmp_path / "tensorrt"
    stub.mkdir()
    (stub / "__init__.pyi").write_text("class Builder: ...\n__version__: str\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "tensorrt", raising=False)
    assert availability.tensorrt_module() is None
    with pytest.raises(Exception, match="not installed"):
        availability.require_tensorrt()


def test_real_looking_tensorrt_is_detected(monkeypatch) -> None:
    fake = types.ModuleType("tensorrt")
    fake.__version__ = "10.3.0"  # type: ignore[attr-defined]
    fake.Builder = object  # type: ignore[attr-defined]
    fake.__spec__ = types.SimpleNamespace(name="tensorrt")  # type: ignore[assignment]
    monkeypatch.setitem(sys.modules, "tensorrt", fake)
    monkeypatch.setattr(availability, "has_module", lambda name: True)
    assert availability.tensorrt_module() is fake


def _tied_defaults() -> dict[str, tuple[Callable[..., Any] | None, dict[str, object]]]:
    """command -> (the library dataclass or function its options fill, notes that are not one
    of its fields or parameters)."""
    from echogen_trt.artifacts.precision import EXPORT_DEFAULT
    from echogen_trt.demo.config import DemoConfig
    from echogen_trt.evaluate.config import EvalConfig
    from echogen_trt.export.onnx_export import DEFAULT_OPSET
    from echogen_trt.runtime.pipeline import run_generate
    from echogen_trt.serve.limits import FD_RESERVE, ServeLimits
    from echogen_trt.train.config import TrainConfig, default_out

    return {
        "train": (TrainConfig, {"out": default_out("<experiment>")}),
        "evaluate": (EvalConfig, {}),
        "demo": (DemoConfig, {}),
        "generate": (run_generate, {}),
        "export": (None, {"opset": DEFAULT_OPSET, "precision": EXPORT_DEFAULT}),
        "serve": (
            ServeLimits,
            {
                "max_body_mb": ServeLimits.max_body_bytes / 2**20,
                "max_connections": f"open-file limit - {FD_RESERVE}",
            },
        ),
    }


def _help_notes(name: str) -> dict[str, str]:
    """option dest -> X of the "[default: X]" its line of `echogen-trt NAME --help` shows."""
    import importlib
    import re

    module, attr, _ = cli_mod.COMMANDS[name]
    command = getattr(importlib.import_module(module), attr)
    ctx = click.Context(command, info_name=name)
    notes = {}
    for param in command.get_params(ctx):
        record = param.get_help_record(ctx)
        found = re.search(r"\[default: ([^\]]+)\]", record[1]) if record else None
        if found and param.name:
            notes[param.name] = found.group(1)
    return notes


def test_help_defaults_are_the_library_defaults() -> None:
    """Every "[default: X]" of train/evaluate/demo/serve/export/generate --help is the default
    of the library field or parameter the option fills (default=None there), so the help cannot
    drift from the library."""
    import inspect

    checked = 0
    for name, (config, special) in _tied_defaults().items():
        params = inspect.signature(config).parameters if config is not None else {}
        defaults = {k: p.default for k, p in params.items() if p.default is not p.empty}
        for option, shown in _help_notes(name).items():
            if option in special:
                expected = special[option]
            elif defaults.get(option) is not None:
                expected = defaults[option]
            else:
                continue  # not a library field (e.g. evaluate --cache: an environment rule)
            if isinstance(expected, (int, float)) and not isinstance(expected, bool):
                assert float(shown) == expected, f"{name} --{option}: help {shown}, lib {expected}"
            else:
                assert shown == str(expected), f"{name} --{option}: help {shown}, lib {expected}"
            checked += 1
    assert checked >= 40  # train 20, evaluate 5, demo 4, export 2, generate 4, serve 9
