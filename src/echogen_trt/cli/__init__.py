"""`echogen-trt` command line: a thin click layer over the library.

Subcommands live one per module and are imported only when invoked, so `echogen-trt --help` and
`generate` never import torch. Every `EchogenError` becomes "error: ..." on stderr and exit code 1;
so does a package that an extra provides and this install lacks (the base install is lean: issue
23), named with the extra to install. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import importlib
import logging
import sys
from typing import Any

import click

from echogen_trt import __version__
from echogen_trt.errors import EchogenError

# name -> (module, attribute, one-line help shown without importing the module)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "doctor": ("echogen_trt.cli.doctor", "doctor", "Report what is installed and what it enables."),
    "synth": ("echogen_trt.cli.synth", "synth", "Write a synthetic CAMUS-layout phantom dataset."),
    "train": ("echogen_trt.cli.train", "train", "Train the Patch-cGAN on a CAMUS tree."),
    "export": ("echogen_trt.cli.export", "export", "Export a checkpoint's generator to ONNX."),
    "build-engine": (
        "echogen_trt.cli.build_engine",
        "build_engine",
        "Build a TensorRT engine from an exported ONNX file.",
    ),
    "generate": ("echogen_trt.cli.generate", "generate", "Generate echo frames from masks."),
    "evaluate": (
        "echogen_trt.cli.evaluate",
        "evaluate",
        "Measure how faithful a model's frames are (Dice, KID, paired metrics).",
    ),
    "bench": ("echogen_trt.cli.bench", "bench", "Benchmark backends, batch sizes and precisions."),
    "demo": ("echogen_trt.cli.demo", "demo", "Run the whole pipeline on phantom data."),
    "serve": ("echogen_trt.cli.serve", "serve", "Serve a model over HTTP, with a drawing page."),
    "triton-repo": (
        "echogen_trt.cli.triton_repo",
        "triton_repo",
        "Write an NVIDIA Triton model repository for engines, ONNX files and IRs.",
    ),
}


# A missing top-level package -> the extra that installs it (the backends' packages: their
# records' install hints); commands that need a whole extra name it whatever package is found
# missing first (export without onnx still needs torch).
EXTRA_OF_PACKAGE = {
    "onnx": "onnx", "onnxscript": "train", "onnxconverter_common": "train",
    "SimpleITK": "medical", "nibabel": "medical", "matplotlib": "plot",
    "starlette": "serve", "uvicorn": "serve", "multipart": "serve",
    "python_multipart": "serve", "prometheus_client": "serve", "nncf": "int8",
}  # fmt: skip
EXTRA_OF_COMMAND = {
    "train": "train", "export": "train", "evaluate": "train", "demo": "train",
    "build-engine": "trt",
}  # fmt: skip


def install_hint(err: ModuleNotFoundError, argv: list[str]) -> str | None:
    """How to install what `err` found missing during the command in `argv`; None for a module
    no extra provides (that is a bug and keeps its traceback)."""
    from echogen_trt.runtime import registry

    package = (err.name or "").split(".")[0]
    hints = {r.package: r.install for r in registry.records()}
    hints |= {p: f"pip install 'echogen-trt[{e}]'." for p, e in EXTRA_OF_PACKAGE.items()}
    if package not in hints:
        return None
    command = next((a for a in argv if a in COMMANDS), "")
    extra = EXTRA_OF_COMMAND.get(command)
    return f"pip install 'echogen-trt[{extra}]'." if extra else hints[package]


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, attr, _ = COMMANDS[cmd_name]
        command = getattr(importlib.import_module(module), attr)
        assert isinstance(command, click.Command), f"{module}.{attr} is not a click command"
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Short help from the table, so --help imports no subcommand module.
        with formatter.section("Commands"):
            formatter.write_dl([(name, spec[2]) for name, spec in COMMANDS.items()])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="echogen-trt")
@click.option("-v", "--verbose", count=True, help="Debug log output.")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors.")
def cli(verbose: int, quiet: bool) -> None:
    """Turn cardiac segmentation masks into echocardiogram frames, from training to TensorRT.

    Quick start: `echogen-trt demo --out demo/` runs the whole pipeline on built-in phantom data.
    """
    # Progress and summaries are INFO and shown by default; -v adds DEBUG, -q keeps warnings.
    level = logging.WARNING if quiet else (logging.DEBUG if verbose else logging.INFO)
    logging.basicConfig(level=level, format="%(message)s", stream=sys.stderr, force=True)


def main(argv: list[str] | None = None) -> Any:
    """Console-script entry point: user errors become one line on stderr and exit status 1."""
    try:
        return cli.main(args=argv, prog_name="echogen-trt", standalone_mode=False)
    except EchogenError as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(1)
    except ModuleNotFoundError as err:
        hint = install_hint(err, sys.argv[1:] if argv is None else argv)
        if hint is None:
            raise
        click.echo(f"error: {err.name} | not installed, and this command needs it. Hint: {hint}",
                   err=True)  # fmt: skip
        sys.exit(1)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as err:
        err.show()
        sys.exit(err.exit_code)
    except click.exceptions.Exit as err:
        sys.exit(err.exit_code)
