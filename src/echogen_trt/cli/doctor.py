"""`echogen-trt doctor`: environment report."""

from __future__ import annotations

import json

import click

from echogen_trt.doctor import run_checks


def _backend_choice(model: str) -> dict[str, object]:
    """Which backend `generate`/`bench` would pick for `model` (from the runtime registry)."""
    from echogen_trt.runtime import registry

    return {"model": model, "choice": registry.describe_choice(model)}


@click.command("doctor")
@click.option("--model", type=click.Path(), help="Also say which backend would serve this model.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def doctor(model: str | None, as_json: bool) -> None:
    """Report Python, torch, ONNX Runtime, TensorRT, CUDA bindings and the GPU, and what each
    missing piece disables, with how to install it."""
    checks = run_checks()
    choice = _backend_choice(model) if model else None
    if as_json:
        payload: dict[str, object] = {"checks": [c.to_dict() for c in checks]}
        if choice:
            payload["backend"] = choice
        click.echo(json.dumps(payload, indent=2))
        return
    width = max(len(c.name) for c in checks)
    for c in checks:
        mark = click.style("ok", fg="green") if c.ok else click.style("--", fg="yellow")
        click.echo(f"{mark}  {c.name:<{width}}  {c.detail}")
        if not c.ok:
            click.echo(f"    {'':<{width}}  disables: {c.disables}")
            click.echo(f"    {'':<{width}}  fix: {c.fix}")
    if choice:
        click.echo(f"\nbackend for {model}: {choice['choice']}")
