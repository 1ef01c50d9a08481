"""The validating readers of model metadata (ONNX metadata_props, OpenVINO rt_info) and engine
provenance, fuzzed: whatever a tampered file holds, only the package's one-line error escapes,
and what is accepted is within the types and ranges the runtime relies on (issue #22)."""

from __future__ import annotations

import contextlib
import json
from dataclasses import asdict
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from echogen_trt.artifacts import provenance as pv
from echogen_trt.artifacts.model_meta import META_PREFIX, ModelMeta
from echogen_trt.artifacts.onnx_file import read_meta as onnx_read_meta
from echogen_trt.artifacts.openvino_ir import read_meta as ir_read_meta
from echogen_trt.errors import EchogenError, EngineMismatch

VALID = ModelMeta("ventricle_atrium", (1, 3), (64, 64), step=3, model_config={"width": 4})
PROPS = VALID.to_props()
KEYS = sorted(PROPS)

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)
ODD_TEXT = st.sampled_from(
    ["", "[", "{", "1e999", "-1e999", "NaN", "9" * 5000, "[" * 3000 + "]" * 3000, '"\\ud800"']
)
RAW = st.one_of(JSON.map(json.dumps), st.text(max_size=20), ODD_TEXT, JSON)  # JSON: not a str


def _one_line(err: EchogenError, source: str) -> None:
    text = str(err)
    assert source in text and "\n" not in text, text


def _sane(meta: ModelMeta) -> None:
    assert meta.kept_labels and set(meta.kept_labels) <= {1, 2, 3}
    assert len(meta.input_size) == 2 and all(1 <= s <= 16384 for s in meta.input_size)
    assert meta.io in ("float", "uint8") and meta.precision in ("fp32", "fp16", "int8")
    assert isinstance(meta.step, int) and meta.step >= 0
    assert isinstance(meta.input_name, str) and isinstance(meta.output_name, str)
    assert isinstance(meta.model_config, dict) and isinstance(meta.recipe, dict)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    changes=st.dictionaries(st.sampled_from(KEYS), RAW, max_size=4),
    drop=st.sets(st.sampled_from(KEYS)),
)
def test_onnx_metadata_reader_raises_only_the_package_error(
    changes: dict[str, Any], drop: set[str]
) -> None:
    props = {k: v for k, v in {**PROPS, **changes}.items() if k not in drop}
    try:
        meta = onnx_read_meta(props, source="ONNX file m.onnx")
    except EchogenError as err:
        _one_line(err, "m.onnx")
        return
    _sane(meta)


@settings(max_examples=150, deadline=None)
@given(changes=st.dictionaries(st.sampled_from(KEYS), RAW, max_size=3))
def test_openvino_rt_info_reader_raises_only_the_package_error(changes: dict[str, Any]) -> None:
    section = {k[len(META_PREFIX) :]: v for k, v in {**PROPS, **changes}.items()}
    model = SimpleNamespace(get_rt_info=lambda: {"echogen": section})
    try:
        meta = ir_read_meta(model, source="OpenVINO IR m.xml")
    except EchogenError as err:
        _one_line(err, "m.xml")
        return
    _sane(meta)


def test_refusals_name_the_key() -> None:
    bad = {**PROPS, "echogen.input_size": "[64]"}
    with pytest.raises(EchogenError, match=r"m\.onnx \| metadata echogen\.input_size: expected"):
        onnx_read_meta(bad, source="m.onnx")


def valid_provenance() -> dict[str, Any]:
    return pv.Provenance(
        tensorrt_version="10.3.0", device_name="GPU", compute_capability="8.6", precision="fp16",
        strongly_typed=False, io=[{"name": "mask", "mode": "input", "dtype": "float32",
                                   "shape": [-1, 1, 64, 64]}],
        profile={"mask": {"min": [1, 1, 64, 64], "opt": [8, 1, 64, 64], "max": [32, 1, 64, 64]}},
        onnx_path="/m.onnx", onnx_sha256="ab" * 32, options=pv.BuildOptions(),
        model_meta=asdict(VALID), layer_precisions={"fp16": 10},
    ).to_dict()  # fmt: skip


PATHS = [
    *[(k,) for k in valid_provenance()],
    ("options", "max_batch"), ("options", "dla_core"), ("options", "timing_cache"),
    ("profile", "mask"), ("profile", "mask", "max"), ("io", 0), ("io", 0, "shape"),
    ("model_meta", "input_size"), ("model_meta", "kept_labels"), ("layer_precisions", "fp16"),
]  # fmt: skip
DELETE = object()


def _set(data: Any, path: tuple[Any, ...], value: Any) -> None:
    for part in path[:-1]:
        data = data[part]
    if value is DELETE and isinstance(data, dict):
        data.pop(path[-1], None)
    elif value is not DELETE:
        data[path[-1]] = value


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    changes=st.lists(
        st.tuples(st.sampled_from(PATHS), st.one_of(JSON, st.just(DELETE))), max_size=3
    )
)
def test_provenance_reader_raises_only_the_package_error(
    tmp_path: Path, changes: list[tuple[tuple[Any, ...], Any]]
) -> None:
    data = valid_provenance()
    for path, value in changes:
        with contextlib.suppress(KeyError, IndexError, TypeError):  # a replaced parent
            _set(data, path, value)
    engine = tmp_path / "m.engine"
    pv.provenance_path(engine).write_text(json.dumps(data))
    try:
        prov = pv.read_provenance(engine)
    except EngineMismatch as err:
        _one_line(err, "m.engine.json")
        return
    _sane(prov.meta)
    assert all(isinstance(v, int) for v in (prov.options.min_batch, prov.options.max_batch))
    pv.check_compatible(prov, prov.environment, engine_path=tmp_path / "absent.engine")


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(content=st.binary(max_size=64) | JSON.map(lambda v: json.dumps(v).encode()))
def test_provenance_file_of_any_bytes_is_one_error(tmp_path: Path, content: bytes) -> None:
    engine = tmp_path / "m.engine"
    pv.provenance_path(engine).write_bytes(content)
    with pytest.raises(EngineMismatch):
        pv.read_provenance(engine)
