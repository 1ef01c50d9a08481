"""Input collection and the output plan: mirroring, exclusions, refusals, shards."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from runtime_helpers import labels_mask, write_png

from echogen_trt.errors import ConfigError
from echogen_trt.runtime.job_plan import (
    Job,
    collect_inputs,
    parse_shard,
    plan_jobs,
    shard_jobs,
)


def _tree(root: Path) -> None:
    for rel in ("a.png", "b.npy", "sub/c.png", "sub/deep/d.png", ".hidden.png", "notes.txt"):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    for name in ("p_4CH_ED.mhd", "p_4CH_ED_gt.mhd", "p_4CH_half_sequence_gt.nii.gz"):
        (root / "sub" / name).write_bytes(b"x")


def _rels(items: list) -> list[str]:  # type: ignore[type-arg]
    return sorted(str(i.rel) for i in items)


def test_folder_walks(tmp_path: Path) -> None:
    _tree(tmp_path / "in")
    flat, failed = collect_inputs([tmp_path / "in"])
    assert _rels(flat) == ["a.png", "b.npy"] and failed == []
    deep, _ = collect_inputs([tmp_path / "in"], recursive=True)
    assert _rels(deep) == ["a.png", "b.npy", "sub/c.png", "sub/deep/d.png", "sub/p_4CH_ED_gt.mhd"]


def test_globs_files_and_missing(tmp_path: Path) -> None:
    _tree(tmp_path / "in")
    items, failed = collect_inputs(
        [
            f"{tmp_path}/in/**/*.png",
            tmp_path / "in" / "b.npy",
            tmp_path / "in" / "a.png",  # also matched by the glob: read once
            tmp_path / "gone.png",
            f"{tmp_path}/in/*.tif",
        ]
    )
    assert sorted(_rels(items)) == ["a.png", "b.npy", "sub/c.png", "sub/deep/d.png"]
    reasons = dict(failed)
    assert reasons[str(tmp_path / "gone.png")] == "does not exist"
    assert reasons[f"{tmp_path}/in/*.tif"] == "no file matches this pattern"


def test_output_folder_inside_input_is_never_read(tmp_path: Path) -> None:
    _tree(tmp_path / "in")
    write_png(tmp_path / "in" / "frames" / "old.png", labels_mask((8, 8)))
    items, _ = collect_inputs([tmp_path / "in"], recursive=True, exclude=tmp_path / "in" / "frames")
    assert not any("frames" in str(i.rel) for i in items)
    jobs = plan_jobs(items, tmp_path / "in" / "frames", input_dirs=[tmp_path / "in"])
    assert {j.out.relative_to(tmp_path / "in" / "frames").as_posix() for j in jobs} >= {
        "a.png",
        "sub/deep/d.png",
        "sub/p_4CH_ED_gt.png",
    }


def test_plan_mirrors_with_new_suffix(tmp_path: Path) -> None:
    _tree(tmp_path / "in")
    items, _ = collect_inputs([tmp_path / "in"], recursive=True)
    jobs = plan_jobs(items, tmp_path / "out", fmt="npy", overlay=True)
    by_rel = {j.rel: j for j in jobs}
    assert by_rel["sub/p_4CH_ED_gt.mhd"].out == tmp_path / "out/sub/p_4CH_ED_gt.npy"
    assert by_rel["a.png"].panel == tmp_path / "out/a_overlay.png"


@pytest.mark.parametrize("inputs", [["in"], ["in/sub", "in/sub/deep"]])
def test_out_equal_to_an_input_folder_is_refused(tmp_path: Path, inputs: list[str]) -> None:
    _tree(tmp_path / "in")
    dirs = [tmp_path / d for d in inputs]
    out = dirs[0]
    items, _ = collect_inputs(dirs, recursive=True, exclude=out)
    assert items == []  # everything is under out, so nothing is read...
    with pytest.raises(ConfigError, match="is an input folder"):  # ...and the plan is refused
        plan_jobs(items, out, input_dirs=dirs)


def test_out_equal_to_an_input_files_folder_is_refused(tmp_path: Path) -> None:
    _tree(tmp_path / "in")
    items, _ = collect_inputs([tmp_path / "in" / "a.png"])
    with pytest.raises(ConfigError, match="is an input folder"):
        plan_jobs(items, tmp_path / "in", fmt="npy")


def test_two_inputs_one_output_is_refused(tmp_path: Path) -> None:
    for folder in ("x", "y"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "same.png").write_bytes(b"x")
    (tmp_path / "x" / "same.npy").write_bytes(b"x")
    items, _ = collect_inputs([tmp_path / "x"])
    with pytest.raises(ConfigError, match=r"same\.png \| would be written from both"):
        plan_jobs(items, tmp_path / "out")
    items, _ = collect_inputs([tmp_path / "x" / "same.png", tmp_path / "y" / "same.png"])
    with pytest.raises(ConfigError, match="Hint: generate each folder into its own --out"):
        plan_jobs(items, tmp_path / "out")


def test_symlink_escaping_out_is_refused(tmp_path: Path) -> None:
    (tmp_path / "in" / "sub").mkdir(parents=True)
    (tmp_path / "in" / "sub" / "a.png").write_bytes(b"x")
    (tmp_path / "out").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "out" / "sub").symlink_to(tmp_path / "elsewhere")
    items, _ = collect_inputs([tmp_path / "in"], recursive=True)
    with pytest.raises(ConfigError, match="outside --out"):
        plan_jobs(items, tmp_path / "out")


def test_output_resolving_onto_an_input_is_refused(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.png").write_bytes(b"x")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a.png").symlink_to(tmp_path / "in" / "a.png")
    items, _ = collect_inputs([tmp_path / "in"])
    with pytest.raises(ConfigError, match="would overwrite the input"):
        plan_jobs(items, tmp_path / "out")


@settings(max_examples=30, deadline=None)
@given(n_jobs=st.integers(0, 40), count=st.integers(1, 7))
def test_shards_partition_the_jobs(n_jobs: int, count: int) -> None:
    jobs = [Job(Path(f"{k}.png"), f"{k:03d}.png", Path(f"o/{k}.png"), None) for k in range(n_jobs)]
    shards = [shard_jobs(list(reversed(jobs)), (i, count)) for i in range(count)]
    flat = [j.rel for shard in shards for j in shard]
    assert sorted(flat) == sorted(j.rel for j in jobs)  # every job exactly once
    sizes = [len(s) for s in shards]
    assert max(sizes, default=0) - min(sizes, default=0) <= 1


def test_parse_shard() -> None:
    assert parse_shard("2/4") == (2, 4)
    for bad in ("4/4", "-1/2", "1", "a/b", "1/0"):
        with pytest.raises(ConfigError, match="Expected i/n with 0 <= i < n"):
            parse_shard(bad)
