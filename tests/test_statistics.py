"""The seeds x examples model: per-example scores, coverage on synthetic runs of known effect and
variance, p-values that agree with the verdicts, the cautious variant and the seeds needed."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from workflow_src.analysis import statistics
from workflow_src.analysis.statistics import Group, estimate


def test_pearson_scores_average_to_each_runs_r_and_a_constant_run_scores_zero():
    rng = np.random.default_rng(0)
    gold = rng.uniform(0, 5, 300)
    predictions = np.stack([gold + rng.normal(0, s, 300) for s in (0.5, 2.0)] + [np.ones(300)])
    scores = statistics.example_scores("pearson", predictions, gold)
    expected = [stats.pearsonr(p, gold).statistic * 100 for p in predictions[:2]]
    assert scores.mean(1)[:2] == pytest.approx(expected, rel=1e-10)
    assert scores[2].tolist() == [0.0] * 300
    accuracy = statistics.example_scores("accuracy", np.array([[1, 2, 3]]), np.array([1, 0, 3]))
    assert accuracy.tolist() == [[100.0, 0.0, 100.0]]


def draw_groups(rng, seeds, examples, seed_sd, example_sd, interaction_sd, effect, paired):
    """Two cells on the same dev examples: cell A = effect + seed + example + interaction
    effects, cell B = its own seed and interaction effects on the same examples; paired cells
    share their seed effect's draw, unpaired ones do not. Returns the groups of A - B."""
    example = rng.normal(0, example_sd, examples)

    def cell(mean, seed_effect):
        noise = rng.normal(0, interaction_sd, (seeds, examples))
        return mean + seed_effect[:, None] + example[None, :] * (1 + mean / 10) + noise

    shared = rng.normal(0, seed_sd, seeds)
    a = cell(effect, shared + rng.normal(0, seed_sd / 2, seeds))
    b = cell(0.0, shared if paired else rng.normal(0, seed_sd, seeds))
    if paired:
        return [Group({"sts": a - b})]
    return [Group({"sts": a}), Group({"sts": -b})]


# seeds, examples, seed sd, example sd, interaction sd, paired: seeds dominating, examples
# dominating, both, no seed effect at all, unpaired cells, and more seeds
SCENARIOS = [
    (3, 400, 2.0, 5.0, 5.0, True),
    (3, 400, 0.1, 10.0, 5.0, True),
    (3, 400, 0.8, 10.0, 10.0, True),
    (3, 300, 0.0, 10.0, 10.0, True),
    (3, 400, 1.5, 8.0, 5.0, False),
    (5, 300, 1.0, 8.0, 8.0, True),
]


def test_intervals_cover_a_known_effect_95_percent_of_the_time():
    """Synthetic runs with a known difference (1.0 point: the example effects scaled by 1.1 in
    cell A, so the examples carry part of the difference) and known seed, example and
    interaction variances: the 95% intervals cover the difference in 93-97% of 3,000 seeded
    draws, over seeds-, examples- and mixed-dominated cases, paired and unpaired."""
    rng = np.random.default_rng(2023)
    covered, draws = 0, 0
    for seeds, examples, seed_sd, example_sd, interaction_sd, paired in SCENARIOS:
        for _ in range(500):
            groups = draw_groups(
                rng, seeds, examples, seed_sd, example_sd, interaction_sd, 1.0, paired
            )
            low, high = estimate(groups, set()).interval()
            covered += low <= 1.0 <= high
            draws += 1
    assert 0.93 <= covered / draws <= 0.97, covered / draws


def test_where_the_seeds_dominate_the_interval_is_the_t_interval_of_the_per_seed_differences():
    rng = np.random.default_rng(1)
    seed_effect = np.array([-4.0, 1.0, 6.0])
    y = seed_effect[:, None] + rng.normal(0, 0.01, (3, 5000))
    est = estimate([Group({"sts": y})], set())
    per_seed = y.mean(1)
    half = stats.t.ppf(0.975, 2) * per_seed.std(ddof=1) / math.sqrt(3)
    high = est.interval()[1]
    assert high - est.diff == pytest.approx(half, rel=1e-3)
    assert est.df == pytest.approx(2, rel=1e-2)


def test_the_interaction_is_counted_once():
    """Pure interaction noise (no seed, no example effect): var(D) = sigma^2 / (S N). The
    example part holds it, the seed part's raw variance holds it a second time and the model
    takes it out there (up to the truncation at zero); the cautious variant counts it twice."""
    rng = np.random.default_rng(3)
    parts = {"example": [], "raw": [], "variance": [], "cautious": []}
    for _ in range(400):
        est = estimate([Group({"sts": rng.normal(0, 10.0, (4, 500))})], set())
        parts["example"].append(sum(est.example_parts))
        parts["raw"].append(sum(est.seed_raw))
        parts["variance"].append(est.variance)
        parts["cautious"].append(est.cautious_variance)
    truth = 100.0 / (4 * 500)
    mean = {name: np.mean(values) for name, values in parts.items()}
    assert mean["example"] == pytest.approx(truth, rel=0.05)
    assert mean["raw"] == pytest.approx(truth, rel=0.1)
    assert truth < mean["variance"] < 1.4 * truth
    assert mean["cautious"] == pytest.approx(2 * truth, rel=0.1)


def test_paired_seeds_that_share_their_noise_give_a_far_narrower_interval():
    rng = np.random.default_rng(4)
    shared = np.array([-5.0, 0.0, 5.0])[:, None]
    a = shared + rng.normal(0, 1, (3, 800)) + 0.3
    b = shared + rng.normal(0, 1, (3, 800))
    paired = estimate([Group({"sts": a - b})], set())
    unpaired = estimate([Group({"sts": a}), Group({"sts": -b})], set())
    assert paired.diff == pytest.approx(unpaired.diff)
    assert 20 * paired.half_width < unpaired.half_width


@pytest.mark.parametrize("op", statistics.OPS)
def test_the_p_value_says_reproduced_exactly_when_the_interval_does(op):
    rng = np.random.default_rng(5)
    agree = 0
    for _ in range(300):
        y = rng.normal(rng.normal(0, 2), rng.uniform(0.5, 20), (3, 200))
        y += rng.normal(0, rng.uniform(0, 3), (3, 1))
        est = estimate([Group({"sts": y})], set())
        margin = float(rng.choice([0.0, 1.0, 2.5]))
        low, high = est.interval()
        verdict = statistics.verdict(op, margin, low, high)
        p = statistics.p_value(op, margin, est.diff, math.sqrt(est.variance), est.df)
        assert 0 <= p <= 1
        agree += (verdict == statistics.REPRODUCED) == (p < 0.05)
    assert agree == 300


def test_the_cautious_interval_contains_the_model_s_and_moves_the_margin_against_the_verdict():
    rng = np.random.default_rng(6)
    est = estimate([Group({"sts": rng.normal(1, 5, (3, 300)) + rng.normal(0, 1, (3, 1))})], set())
    low, high = est.interval()
    cautious_low, cautious_high = est.interval(cautious=True)
    assert cautious_low <= low and high <= cautious_high
    assert est.cautious_df == 2
    assert statistics.cautious_margin("greater", 2.0, "reproduced") == pytest.approx(2.2)
    assert statistics.cautious_margin("within", 2.0, "reproduced") == pytest.approx(1.8)
    assert statistics.cautious_margin("within", 2.0, "contradicted") == pytest.approx(2.2)
    assert statistics.cautious_margin("less", 2.0, "inconclusive") == 2.0


def test_seeds_needed_counts_the_seeds_that_decide_never_and_beyond_twenty():
    rng = np.random.default_rng(7)
    base = rng.normal(0, 1, 2000)
    y = np.array([0.0, 1.0, 2.0])[:, None] + base[None, :] * 0.01  # seeds dominate
    est = estimate([Group({"sts": y})], set())  # D = 1, interval about +-2.5
    assert statistics.verdict("greater", 0.0, *est.interval()) == "inconclusive"
    needed = statistics.seeds_needed("greater", 0.0, est, "inconclusive")
    assert needed.isdigit() and 3 < int(needed) <= 20
    variance, half = est.at_seeds(int(needed))
    assert est.diff - half > 0 and variance < est.variance
    assert statistics.seeds_needed("greater", 0.99, est, "inconclusive") == "> 20"
    assert statistics.seeds_needed("greater", 0.0, est, "reproduced") == ""
    noisy = np.array([0.0, 0.0, 0.0])[:, None] + rng.normal(0, 30, (1, 300)) + 0.5
    est = estimate([Group({"sts": noisy})], set())  # the dev sample alone straddles 0
    assert statistics.seeds_needed("greater", 0.0, est, "inconclusive") == "never"


def test_an_accuracy_table_that_agrees_everywhere_keeps_an_interval_of_about_two_examples():
    est = estimate([Group({"sst": np.zeros((3, 400))})], {"sst"})
    low, high = est.interval()
    assert est.diff == 0 and high == pytest.approx(-low)
    assert 100 / 400 < high < 2 * 100 / 400


def test_docs_statistics_states_the_counts_the_code_has():
    """docs/statistics.md's numbers that the package fixes: the comparisons in claims.yaml,
    the coverage test's cases and draws, the seeds_needed cap."""
    from tests.conftest import REPO_ROOT
    from workflow_src.analysis.claims import load_claims

    text = (REPO_ROOT / "docs" / "statistics.md").read_text()
    comparisons = sum(len(c.comparisons) for c in load_claims(REPO_ROOT / "report/claims.yaml"))
    assert f"claims.csv holds {comparisons} comparisons" in text
    assert f"({len(SCENARIOS)} cases:" in text.replace("six", str(len(SCENARIOS)))
    assert "500 seeded draws each" in text
    assert f'"> {statistics.MAX_SEEDS}" beyond {statistics.MAX_SEEDS} seeds' in text
