"""`generate --shard auto`: the shard of a Slurm job array task or a Kubernetes indexed Job."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from runtime_helpers import labels_mask, write_png

from echogen_trt.cli import cli
from echogen_trt.errors import ConfigError
from echogen_trt.runtime.job_plan import K8S_COUNT_VAR, shard_from_env

SCHEDULER_VARS = (
    "SLURM_ARRAY_TASK_ID",
    "SLURM_ARRAY_TASK_MIN",
    "SLURM_ARRAY_TASK_COUNT",
    "SLURM_ARRAY_TASK_STEP",
    "JOB_COMPLETION_INDEX",
    "JOB_COMPLETIONS",
    "SHARDS",
)


def slurm(task: int, first: int, count: int, step: int | None = None) -> dict[str, str]:
    env = {
        "SLURM_ARRAY_TASK_ID": str(task),
        "SLURM_ARRAY_TASK_MIN": str(first),
        "SLURM_ARRAY_TASK_COUNT": str(count),
    }
    return env | ({"SLURM_ARRAY_TASK_STEP": str(step)} if step is not None else {})


@pytest.mark.parametrize(
    ("env", "count_var", "expected"),
    [
        (slurm(0, 0, 4), None, (0, 4)),
        (slurm(3, 0, 4), None, (3, 4)),
        (slurm(5, 1, 8), None, (4, 8)),  # --array=1-8: tasks are numbered from 1
        (slurm(10, 0, 8, step=2), None, (5, 8)),  # --array=0-14:2
        ({"JOB_COMPLETION_INDEX": "2", "JOB_COMPLETIONS": "3"}, None, (2, 3)),
        ({"JOB_COMPLETION_INDEX": "0", "SHARDS": "5"}, "SHARDS", (0, 5)),
    ],
)
def test_shard_from_each_scheduler(
    env: dict[str, str], count_var: str | None, expected: tuple[int, int]
) -> None:
    assert shard_from_env(env, count_var)[:2] == expected


@pytest.mark.parametrize(
    ("env", "count_var", "reason"),
    [
        ({}, None, "neither a Slurm array .* nor a Kubernetes indexed Job"),
        ({"JOB_COMPLETION_INDEX": "1"}, None, "JOB_COMPLETIONS is not"),
        ({"JOB_COMPLETION_INDEX": "1", "JOB_COMPLETIONS": "4"}, "SHARDS", "SHARDS is not"),
        ({"JOB_COMPLETION_INDEX": "4", "JOB_COMPLETIONS": "4"}, None, "0 <= index < count"),
        (slurm(3, 0, 3), None, "not one of 3 evenly spaced tasks"),  # --array=0,1,3
        (slurm(3, 0, 2, step=2), None, "not one of 2 evenly spaced"),
        ({**slurm(0, 0, 2), "SLURM_ARRAY_TASK_COUNT": "two"}, None, "Expected an integer"),
    ],
)
def test_shard_auto_refusals(env: dict[str, str], count_var: str | None, reason: str) -> None:
    with pytest.raises(ConfigError, match=reason) as info:
        shard_from_env(env, count_var)
    assert "\n" not in str(info.value)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SCHEDULER_VARS:
        monkeypatch.delenv(name, raising=False)


def _masks(folder: Path) -> Path:
    for i in range(7):
        write_png(folder / f"m{i}.png", labels_mask((40, 48), seed=i))
    return folder


def _run(args: list[str], env: dict[str, str]) -> tuple[int, str, list[str]]:
    result = CliRunner().invoke(cli, ["generate", *args, "--json"], env=env)
    written = sorted(p.name for p in Path(args[2]).glob("*.png")) if result.exit_code == 0 else []
    message = str(result.exception) if result.exception else result.stderr
    return result.exit_code, message, written


@pytest.mark.usefixtures("clean_env")
@pytest.mark.parametrize(
    "env_of",
    [
        lambda i, n: slurm(i + 1, 1, n),
        lambda i, n: {"JOB_COMPLETION_INDEX": str(i), "JOB_COMPLETIONS": str(n)},
    ],
    ids=["slurm", "kubernetes"],
)
def test_generate_shard_auto_matches_explicit_shards(
    tmp_path: Path,
    toy: Callable[..., Path],
    env_of: Callable[[int, int], dict[str, str]],
) -> None:
    masks, model = _masks(tmp_path / "masks"), toy()
    seen: list[str] = []
    for i in range(3):
        auto, explicit = tmp_path / f"auto{i}", tmp_path / f"explicit{i}"
        code, err, written = _run(
            [str(masks), "--out", str(auto), "-m", str(model), "--shard", "auto"], env_of(i, 3)
        )
        assert code == 0, err
        _, _, expected = _run(
            [str(masks), "--out", str(explicit), "-m", str(model), "--shard", f"{i}/3"], {}
        )
        assert written == expected and written
        seen += written
    assert sorted(seen) == [f"m{i}.png" for i in range(7)]


@pytest.mark.usefixtures("clean_env")
def test_generate_shard_auto_refuses_outside_a_job_array(
    tmp_path: Path, toy: Callable[..., Path]
) -> None:
    out = tmp_path / "out"
    args = [str(_masks(tmp_path / "masks")), "--out", str(out), "-m", str(toy()), "--shard", "auto"]
    code, message, _ = _run(args, {})
    assert code == 1 and "--shard auto | neither a Slurm array" in message
    assert "\n" not in message.strip() and not out.exists()


@pytest.mark.usefixtures("clean_env")
def test_shard_count_var_needs_shard_auto(tmp_path: Path, toy: Callable[..., Path]) -> None:
    masks, model = _masks(tmp_path / "masks"), toy()
    args = [str(masks), "--out", str(tmp_path / "o"), "-m", str(model), "--shard-count-var", "N"]
    code, message, _ = _run(args, {"N": "2", "JOB_COMPLETION_INDEX": "0"})
    assert code == 1 and "given without --shard auto" in message


def test_the_readme_job_scripts_give_every_shard_once() -> None:
    """The README's sbatch script and indexed-Job manifest, as their schedulers would run them."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## Guide: scaling out", 1)[1].split("\n## ", 1)[0]
    sbatch = section.split("```bash\n#!/bin/bash\n", 1)[1].split("```", 1)[0]
    first, last = map(int, re.search(r"#SBATCH --array=(\d+)-(\d+)\n", sbatch).groups())  # type: ignore[union-attr]
    assert "--shard auto" in sbatch
    count = last - first + 1
    shards = [shard_from_env(slurm(task, first, count))[:2] for task in range(first, last + 1)]
    assert shards == [(i, count) for i in range(count)]
    manifest = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    completions = int(re.search(r"\n  completions: (\d+)\n", manifest).group(1))  # type: ignore[union-attr]
    variable, value = re.search(r'- name: (\w+).*\n\s+value: "(\d+)"', manifest).groups()  # type: ignore[union-attr]
    assert '"--shard", "auto"' in manifest and "completionMode: Indexed" in manifest
    assert variable == K8S_COUNT_VAR and int(value) == completions
    shards = [
        shard_from_env({"JOB_COMPLETION_INDEX": str(i), variable: value})[:2]
        for i in range(completions)
    ]
    assert shards == [(i, completions) for i in range(completions)]
