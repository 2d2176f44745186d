"""Within-epoch learning curves (train/curve.py): when points fall, which dev rows they use,
and what metrics.json keeps. That a curve changes no other number is tests/test_golden_metrics.py
(every fixture cell trains with one) and the resume test of tests/test_train.py."""

from __future__ import annotations

import pytest

from workflow_src.data.batching import TokenizedSplit
from workflow_src.train.curve import Curve, CurveSettings, dev_sample


def split(rows: int) -> TokenizedSplit:
    ids = [f"id{i}" for i in range(rows)]
    return TokenizedSplit("sst", ids, [i % 5 for i in range(rows)], [([1, i],) for i in range(rows)], None, 1)  # fmt: skip


def test_points_fall_every_k_updates_counted_over_the_run():
    curve = Curve(CurveSettings(points=4), {"sst": split(10)}, updates_per_epoch=10)
    assert curve.every == 2
    assert [u for u in range(1, 21) if curve.due(u)] == [2, 4, 6, 8, 10, 12, 14, 16, 18, 20]


def test_more_points_than_updates_gives_one_per_update():
    curve = Curve(CurveSettings(points=10), {"sst": split(3)}, updates_per_epoch=3)
    assert curve.every == 1 and all(curve.due(u) for u in (1, 2, 3))


def test_no_curve_by_default_records_nothing():
    curve = Curve(CurveSettings(), {"sst": split(10)}, updates_per_epoch=10)
    assert not any(curve.due(u) for u in range(1, 30))
    assert curve.record([]) is None and curve.sample == {}


def test_the_dev_sample_is_fixed_in_file_order_and_never_larger_than_the_split():
    big = split(100)
    first, again = dev_sample(big, 8), dev_sample(big, 8)
    assert first == again and len(first) == 8
    assert first.ids == sorted(first.ids, key=lambda i: int(i[2:]))
    assert first.ids != big.ids[:8]  # a random sample, not the first rows
    assert dev_sample(split(5), 8) == split(5)


def test_the_record_names_its_spacing_and_rows():
    curve = Curve(CurveSettings(points=2, dev_rows=4), {"sst": split(10)}, updates_per_epoch=6)
    points = [{"update": 3, "epoch": 1, "dev": {}}]
    assert curve.record(points) == {"every_updates": 3, "dev_rows": {"sst": 4}, "points": points}


@pytest.mark.parametrize(
    "kwargs", [{"points": -1}, {"dev_rows": -2}, {"points": 1.5}, {"points": True}, {"points": 3, "dev_rows": 0}]
)  # fmt: skip
def test_bad_curve_settings_name_the_field(kwargs):
    with pytest.raises(ValueError, match="curve"):
        CurveSettings(**kwargs)
