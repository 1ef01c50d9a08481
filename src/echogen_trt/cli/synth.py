"""`echogen-trt synth`: write a synthetic CAMUS-layout phantom dataset."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from echogen_trt.option_values import parse_names


def _views(
    _ctx: click.Context, _param: click.Parameter, value: str | None
) -> tuple[str, ...] | None:
    return parse_names(value, upper=True)


@click.command("synth")
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to create, or a previous synth output: only the files its synth.json records "
    "are deleted and rewritten, anything else there is kept.",
)
@click.option("--patients", type=int, help="Number of patients.  [default: 20]")
@click.option(
    "--layout",
    type=click.Choice(["nifti", "mhd"]),
    help="2023 NIfTI release or 2019 MetaImage challenge layout.  [default: nifti]",
)
@click.option("--seed", type=int, help="Seed; the same seed gives the same patients.  [default: 0]")
@click.option("--views", callback=_views, help="Comma-separated views.  [default: 4CH,2CH]")
@click.option("--no-sequence", is_flag=True, help="Skip the ED->ES sequences (much faster).")
@click.option(
    "--preview",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write a contact sheet PNG of the 4CH ED pairs.",
)
@click.option("--workers", type=int, help="Worker processes.  [default: 1]")
@click.option(
    "--overwrite",
    is_flag=True,
    help="Also write into a non-empty folder that is not a previous synth output, beside its "
    "files. Never replaces an existing file: if a phantom file's path is taken, synth stops "
    "before writing anything.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def synth(
    out: Path,
    patients: int | None,
    layout: str | None,
    seed: int | None,
    views: tuple[str, ...] | None,
    no_sequence: bool,
    preview: Path | None,
    workers: int | None,
    overwrite: bool,
    as_json: bool,
) -> None:
    """Write phantom patients (apical 4CH/2CH echo frames, CAMUS masks, Info files and ED->ES
    sequences) as a CAMUS tree that `train`, `demo` and the benchmarks read like the real data."""
    from echogen_trt.data.synth import synthesize_dataset

    if preview is not None:
        from echogen_trt.data.preview import check_sheet_path

        check_sheet_path(preview, "--preview")  # before minutes of writing the dataset
    options: dict[str, Any] = {"patients": patients, "layout": layout, "seed": seed,
                               "views": views, "workers": workers}  # fmt: skip
    summary = synthesize_dataset(
        out,
        with_sequence=not no_sequence,
        progress=not as_json,
        overwrite=overwrite,
        **{k: v for k, v in options.items() if v is not None},
    )
    payload = summary.to_dict()
    if preview is not None:
        from echogen_trt.data.preview import contact_sheet

        sheet_view = "4CH" if "4CH" in summary.views else summary.views[0]
        payload["preview"] = str(contact_sheet(out, preview, n=8, view=sheet_view))
    if as_json:
        click.echo(json.dumps(payload, indent=2))
        return
    click.echo(
        f"wrote {summary.patients} patients ({summary.layout}, views {','.join(summary.views)}, "
        f"splits {summary.splits}) to {summary.root}: {summary.files} files, "
        f"{summary.bytes / 1e6:.1f} MB in {summary.seconds:.1f} s "
        f"({summary.patients_per_minute:.0f} patients/min)"
    )
    if preview is not None:
        click.echo(f"preview: {payload['preview']}")
