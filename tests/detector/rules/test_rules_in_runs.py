"""Rules inside `score`, `nightly` and `rules backtest`, on a simulated store."""

from __future__ import annotations

from datetime import timedelta

import duckdb
import polars as pl
import pytest
from typer.testing import CliRunner

from detector import rules
from detector import simulate as sim
from detector.cli import app
from detector.model import artifact
from detector.pipeline import featurise, scoring
from features import pipeline
from tests.conftest import ingest_world

runner = CliRunner()

EVERYONE = """
id = "everyone"
title = "Every active account"
severity = "low"
table = "accounts"
version = 3
description = "Fires on every account with a request: counts what a backtest sees."
runbook = "None: a measuring rule."
false_positives = ["Every legitimate account"]
evidence = ["n_requests"]
where = "n_requests >= {min_requests}"
[thresholds]
min_requests = 1
[[cases]]
name = "an account with requests"
expect = "fires"
kind = "campaign"
row = { n_requests = 5 }
[[cases]]
name = "an account without (a look-alike of nothing)"
expect = "quiet"
kind = "lookalike"
row = { n_requests = 0 }
"""


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("rules")
    world = sim.simulate(sim.scenario("default", accounts=200, days=6, seed=31, volume_scale=0.4))
    first = world.config.start.date()
    return ingest_world(world, root), first, root


@pytest.fixture(scope="module")
def window_data(world):
    store, first, _ = world
    return featurise.featurise(store, pipeline.Window(first + timedelta(days=5), 7))


HEAVY_GRADER = """
id = "heavy_grader"
title = "Grades a lot"
severity = "medium"
table = "accounts"
version = 2
mode = "{mode}"
description = "An account a good share of whose requests grade against a rubric."
runbook = "Read the samples."
false_positives = ["An LLM-as-judge product"]
evidence = ["share_grading"]
where = "share_grading >= {{min_share}}"
[thresholds]
min_share = 0.3
[[cases]]
name = "grader"
expect = "fires"
kind = "campaign"
row = {{ share_grading = 0.9 }}
[[cases]]
name = "chat product that sometimes asks for a score"
expect = "quiet"
kind = "lookalike"
row = {{ share_grading = 0.05 }}
"""


def grader_rules(folder, mode):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "heavy_grader.toml").write_text(HEAVY_GRADER.format(mode=mode))
    return rules.load(folder)


def test_enforced_rule_flags_shadow_records_off_skips(window_data, tmp_path):
    fitted, _ = artifact.load(None)
    features = window_data.features
    expected = set(features.filter(pl.col("share_grading") >= 0.3)["account_id"].to_list())
    assert 0 < len(expected) < features.height
    default = scoring.score_data(fitted, window_data, explain_flagged=False)
    flags = dict(default.accounts.select("account_id", "flagged").iter_rows())

    shadow = scoring.score_data(
        fitted, window_data, explain_flagged=False, ruleset=grader_rules(tmp_path / "s", "shadow")
    )
    mine = shadow.rule_hits.filter(pl.col("rule_id") == "heavy_grader")
    assert set(mine["subject_id"].to_list()) == expected
    assert set(mine["mode"].to_list()) == {"shadow"} and set(mine["rule_version"]) == {2}
    assert dict(shadow.accounts.select("account_id", "flagged").iter_rows()) == flags

    enforced = scoring.score_data(
        fitted, window_data, ruleset=grader_rules(tmp_path / "e", "enforce")
    ).accounts
    hit = enforced.filter(pl.col("account_id").is_in(sorted(expected)))
    assert hit["flagged"].all() and set(hit["status"].to_list()) == {"flagged"}
    assert all(r[0].startswith("rule heavy_grader v2 (") for r in hit["reasons"].to_list())
    rest = enforced.filter(~pl.col("account_id").is_in(sorted(expected)))
    assert all(flags[a] == f for a, f in rest.select("account_id", "flagged").iter_rows())

    off = rules.load(tmp_path / "s").with_modes({"heavy_grader": "off"})
    hits = scoring.score_data(fitted, window_data, explain_flagged=False, ruleset=off).rule_hits
    assert hits.filter(pl.col("rule_id") == "heavy_grader").is_empty()


def test_the_campaign_report_rule_in_shadow_reports_nothing_but_records_its_hits(window_data):
    fitted, _ = artifact.load(None)
    default = scoring.score_data(fitted, window_data, explain_flagged=False)
    assert default.campaigns.height > 0
    reported = default.rule_hits.filter(pl.col("rule_id") == "campaign_report")
    assert sorted(reported["subject_id"]) == sorted(default.campaigns["campaign_id"])
    shadow = rules.load().with_modes({"campaign_report": "shadow"})
    quiet = scoring.score_data(fitted, window_data, explain_flagged=False, ruleset=shadow)
    assert quiet.campaigns.is_empty()
    assert quiet.accounts["campaign_id"].is_null().all()
    hits = quiet.rule_hits.filter(pl.col("rule_id") == "campaign_report")
    assert sorted(hits["subject_id"]) == sorted(default.campaigns["campaign_id"])
    assert set(hits["mode"]) == {"shadow"}


def test_score_writes_rule_hits_and_refuses_a_bad_rule_folder(world, tmp_path):
    _, _, root = world
    folder = tmp_path / "rules"
    grader_rules(folder, "shadow")
    args = ["score", "--requests", str(root / "requests.parquet")]
    args += ["--accounts", str(root / "accounts.parquet"), "--out", str(tmp_path / "out")]
    result = runner.invoke(app, [*args, "--rules", str(folder)])
    assert result.exit_code == 0, result.output
    hits = pl.read_parquet(tmp_path / "out" / "rule_hits.parquet")
    assert hits.columns == list(rules.HITS)
    assert "heavy_grader" in set(hits["rule_id"])
    (folder / "broken.toml").write_text('id = "broken"\n')
    result = runner.invoke(app, [*args, "--rules", str(folder)])
    assert result.exit_code == 2
    assert "broken.toml" in result.output


def test_an_analysts_mode_change_is_audited_and_the_nightly_job_follows_it(world, tmp_path):
    store, first, _ = world
    warehouse = tmp_path / "w.duckdb"
    day = first + timedelta(days=5)
    nightly = ["nightly", "--store", str(store), "--date", day.isoformat()]
    nightly += ["--warehouse", str(warehouse)]
    assert runner.invoke(app, nightly).exit_code == 0
    mode = ["rules", "mode", "campaign_report", "shadow", "--warehouse", str(warehouse)]
    mode += ["--analyst", "ana@example.com", "--reason", "measuring the report rule"]
    result = runner.invoke(app, mode)
    assert result.exit_code == 0, result.output
    assert "campaign_report v1: enforce -> shadow" in result.stdout
    bad = runner.invoke(app, [*mode[:3], "loud", *mode[4:]])
    assert bad.exit_code == 2 and "mode must be one of" in bad.output
    unknown = runner.invoke(app, ["rules", "mode", "no_such_rule", "off", *mode[4:]])
    assert unknown.exit_code == 2 and "no rule 'no_such_rule'" in unknown.output
    assert runner.invoke(app, nightly).exit_code == 0  # rerun of the night under the new mode
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        audit = con.execute("SELECT actor, action, subject_kind, subject_id FROM audit_log")
        assert audit.fetchall() == [("ana@example.com", "rule_mode", "rule", "campaign_report")]
        n_campaigns = con.execute("SELECT count(*) FROM campaigns").fetchone()[0]
        hits = con.execute(
            "SELECT mode, rule_version, count(*) FROM rule_hits WHERE rule_id = 'campaign_report' "
            "GROUP BY ALL"
        ).fetchall()
    finally:
        con.close()
    assert n_campaigns == 0
    assert len(hits) == 1 and hits[0][:2] == ("shadow", 1) and hits[0][2] > 0


def test_backtest_counts_hits_against_labels(world, tmp_path):
    store, first, root = world
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "everyone.toml").write_text(EVERYONE)
    nights = [first + timedelta(days=4), first + timedelta(days=5)]
    warehouse = tmp_path / "w.duckdb"
    args = ["rules", "backtest", "--store", str(store), "--from", nights[0].isoformat()]
    args += ["--to", nights[1].isoformat(), "--labels", str(root / "labels.parquet")]
    args += ["--rules", str(folder), "--out", str(tmp_path / "bt"), "--warehouse", str(warehouse)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "everyone" in result.stdout and "hits per night" in result.stdout
    table = pl.read_parquet(tmp_path / "bt" / "rule_backtest.parquet")
    assert (tmp_path / "bt" / "rule_backtest.png").stat().st_size > 10_000

    requests = pl.read_parquet(root / "requests.parquet", columns=["ts", "account_id"])
    labels = pl.read_parquet(root / "labels.parquet")
    for night in nights:
        start = night - timedelta(days=6)
        active = (
            requests.filter(pl.col("ts").dt.date().is_between(start, night))
            .select("account_id")
            .unique()
            .join(labels, on="account_id", how="left")
        )
        row = table.filter((pl.col("night") == night) & (pl.col("rule_id") == "everyone"))
        assert row["hits"].item() == active.height
        assert row["hits_campaign"].item() == int((active["label"] == 1).sum())
        assert row["hits_legit"].item() == int((active["label"] == 0).sum())
        assert row["precision"].item() == pytest.approx(
            (active["label"] == 1).sum() / active["label"].is_not_null().sum()
        )
        assert row["rule_version"].item() == 3
    every = set(table["rule_id"].to_list())
    assert {r.id for r in rules.load(folder).rules} == every  # every rule, every night
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        stored = con.execute("SELECT count(*) FROM rule_backtest").fetchone()[0]
    finally:
        con.close()
    assert stored == table.height


def test_backtest_refuses_reversed_dates(world):
    store, first, _ = world
    args = [
        "rules",
        "backtest",
        "--store",
        str(store),
        "--from",
        "2026-03-02",
        "--to",
        "2026-03-01",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "--to must not be before --from" in result.output
