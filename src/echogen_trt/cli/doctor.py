"""`echogen-trt doctor`: environment report."""

from __future__ import annotations

import json
from typing import Any

import click

from echogen_trt.doctor import run_checks


def _backend_choice(model: str) -> dict[str, Any]:
    """Which backend `generate`/`bench` would pick for `model` (from the runtime registry), and
    what `--backend auto` decided on this machine (the cached measurement; doctor never runs
    one)."""
    from echogen_trt.runtime import registry

    return {"model": model, "choice": registry.describe_choice(model), "auto": _auto(model)}


def _auto(model: str) -> dict[str, Any]:
    from pathlib import Path

    from echogen_trt.runtime import backend_choice, registry

    path = Path(model)
    if not path.is_file():
        return {"decision": None, "why": "file not found"}
    kinds, _, why_not = backend_choice.candidates(path, registry)  # type: ignore[arg-type]
    if why_not:
        return {"decision": kinds[0] if kinds else None, "why": why_not}
    found = backend_choice.choose_backend(path, registry, measure=False)  # type: ignore[arg-type]
    if found is None:
        return {
            "decision": None,
            "why": f"not measured on this machine yet ({' vs '.join(kinds)}); "
            "`generate --backend auto` measures once and caches the winner",
        }
    return {"decision": found.kind, **found.to_dict()}


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
        auto = choice["auto"]
        load = f", load {auto['load_avg']}" if auto.get("load_avg") else ""
        when = f" ({auto['measured_at']}{load})" if auto.get("measured_at") else ""
        click.echo(f"--backend auto: {auto['decision'] or '-'}: {auto['why']}{when}")
