"""Evaluation arithmetic, leave-one-out surgery and the rules baseline."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from research.baselines import RULES, Blend, Detector, Rules, rule_points
from research.evaluate import Result, drop_archetype, drop_campaign, metrics, recall_at_fpr
from research.report import lolo_table, run_units
from research.worlds import Example
from tests.detector.model.conftest import EDGE_SCHEMA


def test_recall_at_fpr_uses_the_legitimate_score_quantile():
    y = np.array([0] * 100 + [1] * 4)
    scores = np.concatenate([np.linspace(0, 0.99, 100), [0.5, 0.995, 2.0, 3.0]])
    # 1% of 100 legitimate accounts = 1 may pass: threshold 0.98, three positives above it
    assert recall_at_fpr(y, scores, 0.01) == 0.75
    # no legitimate account may pass: threshold 0.99, still three above
    assert recall_at_fpr(y, scores, 0.001) == 0.75
    assert recall_at_fpr(y, np.zeros(104), 0.01) == 0.0  # constant scorer catches nothing
    assert math.isnan(recall_at_fpr(np.zeros(5), np.zeros(5), 0.01))


def test_metrics_at_the_operating_threshold():
    y = np.array([0, 0, 0, 0, 1, 1])
    out = metrics(y, np.array([0.1, 0.2, 0.3, 0.9, 0.8, 0.95]), threshold=0.5)
    assert out["op_recall"] == 1.0 and out["op_false_positives"] == 1 and out["op_fpr"] == 0.25
    assert 0 < out["auprc"] < 1


def test_drop_campaign_removes_accounts_their_edges_and_shrinks_clusters():
    features = pl.DataFrame(
        {
            "account_id": ["a", "b", "c", "d"],
            "label": [1, 1, 0, 0],
            "campaign": ["x", "y", None, None],
        }
    )
    edges = pl.DataFrame(
        [("a", "b", "payment", 1.0, "pm"), ("b", "c", "template", 1.0, "t")],
        schema=EDGE_SCHEMA,
        orient="row",
    )
    members = pl.DataFrame(
        {
            "account_id": ["a", "b", "c", "d"],
            "cluster": ["k", "k", "k", None],
            "cluster_size": [3, 3, 3, 1],
        }
    )
    ex = Example("w", 7, features, edges, members, pl.DataFrame())
    (out,) = drop_campaign([ex], "x")
    assert out.features["account_id"].to_list() == ["b", "c", "d"]
    assert out.edges.height == 1 and out.edges["src"][0] == "b"
    assert out.members.sort("account_id")["cluster_size"].to_list() == [2, 2, 1]


def test_rules_fire_on_what_they_say():
    frame = pl.DataFrame(
        {
            "share_elicitation": [0.6, 0.0],
            "share_grading": [0.0, 0.0],
            "near_dup_rate": [0.9, 0.0],
            "top_head_share": [0.0, 0.1],
            "cluster_size": [12.0, 1.0],
            "deg_payment": [3.0, 0.0],
            "account_age_days": [4.0, 400.0],
            "signup_channel": ["education", "self_serve"],
            "newest_model_lag_hours": [3.0, 200.0],
            "newest_model_share": [0.5, 0.0],
            "hour_entropy": [0.99, 0.5],
        }
    )
    points = rule_points(frame)
    assert points.columns == list(RULES)
    assert points.row(0) == (True,) * len(RULES)
    assert points.row(1) == (False,) * len(RULES)
    scores = Rules("rules").score(type("W", (), {"frame": frame})())
    assert scores[0] > scores[1]


def test_metrics_count_what_was_flagged_not_what_was_held():
    y = np.array([0, 0, 0, 1])
    scores = np.array([0.1, 0.9, 0.95, 0.99])
    held_one = np.array([False, False, True, True])  # 0.9 held for review
    out = metrics(y, scores, threshold=0.5, flagged=held_one)
    assert out["op_false_positives"] == 1 and out["op_recall"] == 1.0
    assert metrics(y, scores, threshold=0.5)["op_false_positives"] == 2


def test_drop_archetype_removes_only_that_archetype():
    features = pl.DataFrame(
        {
            "account_id": ["a", "b", "c"],
            "label": [0, 0, 1],
            "campaign": [None, None, "x"],
            "archetype": ["agent_platform", "hobbyist", "x"],
        }
    )
    members = pl.DataFrame(
        {"account_id": ["a", "b", "c"], "cluster": [None] * 3, "cluster_size": [1] * 3}
    )
    ex = Example("w", 7, features, pl.DataFrame(schema=EDGE_SCHEMA), members, pl.DataFrame())
    (out,) = drop_archetype([ex], "agent_platform")
    assert out.features["account_id"].to_list() == ["b", "c"]


def test_blend_is_the_mean_of_its_parts_and_needs_them():
    class Fixed(Detector):
        def score(self, window):
            return np.full(3, self.threshold)

    blend = Blend("blend")
    with pytest.raises(ValueError, match="torch and hgb"):
        blend.fit([], [], None)
    blend.parts = (Fixed("a", threshold=0.2), Fixed("b", threshold=0.6))
    assert np.allclose(blend.score(None), 0.4)


def test_lolo_table_sums_the_left_out_archetype_over_windows():
    def result(split, det, n, fpr, held):
        summary = {"archetype_accounts": n, "archetype_fpr": fpr, "archetype_held": held}
        return Result("lolo_legit", split, det, "w", 7, pl.DataFrame(), summary)

    table = lolo_table(
        [
            result("without agent_platform", "torch", 100, 0.02, 3),
            result("without agent_platform", "torch", 300, 0.0, 1),
            result("without eval_harness", "torch", 50, 0.0, 0),
        ]
    )
    rows = {r["left_out"]: r for r in table.iter_rows(named=True)}
    assert rows["agent_platform"]["accounts"] == 400 and rows["agent_platform"]["flagged"] == 2
    assert rows["agent_platform"]["held"] == 4 and rows["agent_platform"]["fpr"] == 0.005
    assert rows["eval_harness"]["fpr"] == 0.0


def test_a_report_resumes_from_its_checkpoint_without_running_finished_units(tmp_path):
    frame = pl.DataFrame(
        {"account_id": ["a", "b"], "label": [0, 1], "score": [0.1, 0.9], "flagged": [False, True]}
    )
    calls: list[str] = []

    def unit(name):
        def run():
            calls.append(name)
            return [Result("p", name, "torch", "w", 7, frame, {"average_precision": 1.0})]

        return run

    first = run_units([("one", unit("one")), ("two", unit("two"))], tmp_path)
    assert calls == ["one", "two"]
    # a stop between units leaves whole units only; the rerun trains just what is missing
    (tmp_path / "two" / "results.json").unlink()
    again = run_units([("one", unit("one")), ("two", unit("two"))], tmp_path)
    assert calls == ["one", "two", "two"]
    assert [r.split for r in again] == [r.split for r in first]
    assert again[0].summary == {"average_precision": 1.0}
    assert again[0].frame.equals(frame)
    # reporting what is finished runs nothing and leaves out what is not there
    (tmp_path / "two" / "results.json").unlink()
    read = run_units([("one", unit("one")), ("two", unit("two"))], tmp_path, finished_only=True)
    assert calls == ["one", "two", "two"]
    assert [r.split for r in read] == ["one"]


def test_a_report_of_leave_one_out_units_alone_is_written(tmp_path):
    """`--only loto_campaign lolo_legit` reports have no held-out protocol to plot."""
    from research.report import write

    frame = pl.DataFrame(
        {
            "account_id": ["a", "b", "c"],
            "label": [0, 1, 1],
            "campaign": [None, "hydra_proxy", "quiet_grader"],
            "archetype": ["hobbyist", None, None],
            "score": [0.1, 0.9, 0.2],
            "flagged": [False, True, False],
            "held": [False, False, False],
        }
    )
    figures = {"accounts": 3, "auprc": 1.0, "recall_at_0.1%": 1.0, "recall_at_1%": 1.0}
    figures |= {"op_recall": 0.5}
    figures |= {"op_fpr": 0.0, "op_false_positives": 0, "op_held": 0}
    lolo = figures | {"archetype_accounts": 1, "archetype_fpr": 0.0, "archetype_held": 0}
    results = [
        Result("loto_campaign", "without hydra_proxy", "torch", "w", 7, frame, figures),
        Result("lolo_legit", "without hobbyist", "torch", "w", 7, frame, lolo),
    ]
    write(results, None, tmp_path)
    left_out = pl.read_csv(tmp_path / "loto_campaign.csv")
    assert left_out.select("campaign", "recall").rows() == [("hydra_proxy", 1.0)]
    assert pl.read_csv(tmp_path / "lolo_legit.csv")["left_out"].to_list() == ["hobbyist"]
    assert "Leave one campaign type out" in (tmp_path / "REPORT.md").read_text()
    assert not (tmp_path / "pr_heldout.png").exists()
