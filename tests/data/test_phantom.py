"""Phantom patients: determinism, CAMUS mask contract, anatomy, fan geometry and the sequence."""

from __future__ import annotations

import numpy as np
import pytest

from echogen_trt.data import anatomy
from echogen_trt.data.phantom import synth_patient
from echogen_trt.data.records import ViewRecord
from echogen_trt.data.speckle import QUALITIES
from echogen_trt.errors import ConfigError

SEED = 7
INDICES = (1, 2, 3, 4, 5, 6)


@pytest.fixture(scope="module")
def patients() -> dict[int, dict[str, ViewRecord]]:
    """Six patients, both views, ED/ES only (about 0.1 s each)."""
    return {i: synth_patient(SEED, i, with_sequence=False) for i in INDICES}


@pytest.fixture(scope="module")
def with_sequence() -> ViewRecord:
    return synth_patient(SEED, 2, views=("4CH",))["4CH"]


def _arrays(rec: ViewRecord) -> list[np.ndarray]:
    assert rec.ed_gt is not None and rec.es_gt is not None
    return [rec.ed, rec.es, rec.ed_gt, rec.es_gt]


def test_same_seed_and_index_give_identical_records(patients) -> None:
    again = synth_patient(SEED, 3, with_sequence=False)
    for view in ("4CH", "2CH"):
        for a, b in zip(_arrays(patients[3][view]), _arrays(again[view]), strict=True):
            np.testing.assert_array_equal(a, b)
        assert again[view].info == patients[3][view].info
        assert again[view].spacing == patients[3][view].spacing


def test_a_view_does_not_depend_on_the_other_views_requested(patients) -> None:
    alone = synth_patient(SEED, 3, views=("4CH",), with_sequence=False)
    assert list(alone) == ["4CH"]
    for a, b in zip(_arrays(alone["4CH"]), _arrays(patients[3]["4CH"]), strict=True):
        np.testing.assert_array_equal(a, b)


def test_different_seed_or_index_gives_a_different_patient(patients) -> None:
    other_seed = synth_patient(SEED + 1, 3, views=("4CH",), with_sequence=False)["4CH"]
    base = patients[3]["4CH"]
    for other in (other_seed, patients[4]["4CH"]):
        assert other.ed.shape != base.ed.shape or not np.array_equal(other.ed, base.ed)
        assert other.ed_gt.shape != base.ed_gt.shape or not np.array_equal(other.ed_gt, base.ed_gt)


def test_records_follow_the_camus_contract(patients) -> None:
    for i, views in patients.items():
        for view, rec in views.items():
            assert rec.patient == f"patient{i:04d}" and rec.view == view
            for array in _arrays(rec):
                assert array.dtype == np.uint8 and array.shape == rec.ed.shape
            for mask in (rec.ed_gt, rec.es_gt):
                assert set(np.unique(mask)) == {0, 1, 2, 3}, (i, view)
            assert rec.sequence is None and rec.sequence_gt is None
            assert all(0.1 < s < 0.5 for s in rec.spacing)


def test_native_sizes_vary_like_camus(patients) -> None:
    shapes = {rec.ed.shape for views in patients.values() for rec in views.values()}
    assert len(shapes) >= 6
    for rows, cols in shapes:
        assert 500 <= rows <= 1200 and 400 <= cols <= 1200


def test_es_contracts_the_lv_and_fills_the_la(patients) -> None:
    for views in patients.values():
        for rec in views.values():
            ed_lv, es_lv = np.sum(rec.ed_gt == 1), np.sum(rec.es_gt == 1)
            assert 0.35 * ed_lv < es_lv < 0.85 * ed_lv
            assert np.sum(rec.es_gt == 3) > np.sum(rec.ed_gt == 3)


def _polar(rec: ViewRecord) -> tuple[np.ndarray, np.ndarray]:
    """Radius (mm) and angle from the vertical (deg) of each pixel, apex at the top centre."""
    rows, cols = rec.ed.shape
    y = np.arange(rows)[:, None] * rec.spacing[0]
    x = (np.arange(cols)[None, :] - (cols - 1) / 2) * rec.spacing[1]
    return np.hypot(x, y), np.degrees(np.abs(np.arctan2(x, y)))


def test_image_is_zero_outside_the_fan_and_speckled_inside(patients) -> None:
    for views in patients.values():
        for rec in views.values():
            r, angle = _polar(rec)
            depth = (rec.ed.shape[0] - 1) * rec.spacing[0]
            outside = (angle > 40.01) | (r > depth * 1.001)
            inside = (angle < 34) & (r < depth * 0.95) & (r > 10)
            for image, mask in ((rec.ed, rec.ed_gt), (rec.es, rec.es_gt)):
                assert not image[outside].any() and not mask[outside].any()
                assert np.mean(image[inside] > 0) > 0.4  # blood pools may be black
                assert np.mean(image[inside & (mask == 2)] > 0) > 0.9
                assert np.std(image[inside]) > 20


def test_blood_is_darker_than_myocardium(patients) -> None:
    for views in patients.values():
        for rec in views.values():
            for image, mask in ((rec.ed, rec.ed_gt), (rec.es, rec.es_gt)):
                myo = image[mask == 2].mean()
                assert image[mask == 1].mean() < 0.6 * myo
                assert image[mask == 3].mean() < 0.6 * myo


def test_info_fields_are_plausible_and_consistent(patients) -> None:
    for views in patients.values():
        four, two = views["4CH"].info, views["2CH"].info
        for key in ("Sex", "Age", "LVedv", "LVesv", "LVef", "NbFrame", "FrameRate"):
            assert four[key] == two[key], key  # patient-level facts agree across views
        edv, esv, ef = float(four["LVedv"]), float(four["LVesv"]), float(four["LVef"])
        assert 10 < esv < edv and 40 < edv < 300
        assert ef == pytest.approx(100 * (edv - esv) / edv, abs=0.06)
        assert four["EF"] == four["LVef"] and 25 < ef < 75
        assert four["ED"] == "1" and four["ES"] == four["NbFrame"]
        assert 10 <= int(four["NbFrame"]) <= 20 and 20 <= int(four["FrameRate"]) <= 80
        assert four["Sex"] in ("M", "F") and four["ImageQuality"] in QUALITIES


def test_sequence_runs_from_ed_to_es_with_the_same_deformation(with_sequence) -> None:
    rec = with_sequence
    assert rec.sequence is not None and rec.sequence_gt is not None
    n = int(rec.info["NbFrame"])
    assert rec.sequence.shape == (n, *rec.ed.shape) and rec.sequence.dtype == np.uint8
    assert rec.sequence_gt.shape == rec.sequence.shape
    np.testing.assert_array_equal(rec.sequence[0], rec.ed)
    np.testing.assert_array_equal(rec.sequence[-1], rec.es)
    np.testing.assert_array_equal(rec.sequence_gt[0], rec.ed_gt)
    np.testing.assert_array_equal(rec.sequence_gt[-1], rec.es_gt)
    lv = np.array([np.sum(m == 1) for m in rec.sequence_gt])
    assert np.all(np.diff(lv) <= 0.002 * lv[0])  # the cavity shrinks monotonically
    # Speckle changes smoothly: neighbouring frames correlate more than ED with ES.
    seq = rec.sequence.astype(np.float32)
    near = np.corrcoef(seq[0].ravel(), seq[1].ravel())[0, 1]
    far = np.corrcoef(seq[0].ravel(), seq[-1].ravel())[0, 1]
    assert near > far


def test_same_patient_with_or_without_sequence(with_sequence) -> None:
    short = synth_patient(SEED, 2, views=("4CH",), with_sequence=False)["4CH"]
    for a, b in zip(_arrays(short), _arrays(with_sequence), strict=True):
        np.testing.assert_array_equal(a, b)


def test_anatomy_blend_is_exact_at_both_ends_and_contracts_by_the_area_ratio() -> None:
    rng = np.random.default_rng(3)
    traits = anatomy.sample_traits(rng)
    ed = anatomy.sample_heart(rng, "4CH", traits)
    es = anatomy.systole(ed, rng, traits)
    assert anatomy.blend(ed, es, 0.0) == ed and anatomy.blend(ed, es, 1.0) == es
    mid = anatomy.blend(ed, es, 0.5)
    assert es.length < mid.length < ed.length and ed.wall < mid.wall < es.wall
    ratio = anatomy.lv_area_length(es)[0] / anatomy.lv_area_length(ed)[0]
    assert ratio == pytest.approx(traits.area_ratio, rel=0.12)


def test_bad_arguments_raise_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"phantom seed/index \| negative value"):
        synth_patient(-1, 1)
    with pytest.raises(ConfigError, match=r"phantom views \| unknown or empty \['3CH'\]"):
        synth_patient(0, 1, views=("3CH",))
