"""Moving code changes no number: tiny cells trained now, fp32 on the CPU, give the metric values
that the code of an earlier commit gave (tests/golden/tiny_metrics_*.json, issue 22 item 8).

Every task, every epoch (train loss, dev metrics, SMART's statistics), best and final, the best
epoch and the examples of each split; timings, commit and code hash aside. This is also what
lets runs trained before a refactor stay in a shipped reproduction. The fixture's settings are
stored with it, so a later change of the `tiny` preset does not move it. How to regenerate it
(only for a change meant to change the numbers): tests/golden/make_tiny_metrics.py.
"""

from __future__ import annotations

import json
import math

import pytest

from tests.golden.tiny_cases import CASES, golden_path, values

pytestmark = pytest.mark.slow

TOLERANCE = 1e-6  # absolute, on every number; on the machine that made the fixture: exact


def differences(expected, got, where: str = "") -> list[str]:
    """Where `got` differs from `expected` by more than TOLERANCE, or in shape."""
    if isinstance(expected, dict) and isinstance(got, dict):
        if expected.keys() != got.keys():
            return [f"{where}: keys {sorted(expected)} != {sorted(got)}"]
        return [d for k in expected for d in differences(expected[k], got[k], f"{where}.{k}")]
    if isinstance(expected, list) and isinstance(got, list):
        if len(expected) != len(got):
            return [f"{where}: {len(expected)} entries != {len(got)}"]
        pairs = enumerate(zip(expected, got, strict=True))
        return [d for i, (e, g) in pairs for d in differences(e, g, f"{where}[{i}]")]
    if isinstance(expected, float) and isinstance(got, int | float) and not isinstance(got, bool):
        if math.isclose(expected, got, rel_tol=0.0, abs_tol=TOLERANCE):
            return []
    elif expected == got:
        return []
    return [f"{where}: {expected!r} != {got!r}"]


def test_differences_names_what_moved():
    assert differences({"a": [1.0, 2]}, {"a": [1.0 + 1e-9, 2]}) == []
    assert differences({"a": [1.0, 2]}, {"a": [1.1, 2]}) == [".a[0]: 1.0 != 1.1"]
    assert differences({"a": 1}, {"b": 1}) == [": keys ['a'] != ['b']"]
    assert differences([None], [0.0]) == ["[0]: None != 0.0"]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_a_tiny_cell_gives_the_numbers_it_gave_before(case, tmp_path, shared_data):
    """With a within-epoch curve on (issue 25 item 4), which must change no number either:
    the fixture was made before curves existed."""
    from workflow_src.spec.config import TrainConfig
    from workflow_src.train.curve import CurveSettings
    from workflow_src.train.loop import run

    golden = json.loads(golden_path(case.name).read_text())
    settings = {**golden["settings"], "data_dir": str(shared_data)}
    curve = CurveSettings(points=2, dev_rows=8)
    metrics = run(TrainConfig.from_dict(settings), golden["seed"], tmp_path / "run", curve=curve)
    points = metrics["curve"]["points"]
    assert len(points) == 2 * settings["epochs"]
    assert {task for point in points for task in point["dev"]} == set(settings["tasks"])
    moved = differences(golden["values"], values(metrics))
    assert moved == [], (
        f"{case.name} ({case.note}) no longer gives the numbers of {golden['made_at_commit']}:\n"
        + "\n".join(moved[:20])
    )
