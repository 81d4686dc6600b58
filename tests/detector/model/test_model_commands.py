"""`distillguard score` and `train` as the contract fixes them, on worlds no model was trained on."""

from __future__ import annotations

import json
import shutil

import polars as pl
import pytest
from sklearn.metrics import average_precision_score
from typer.testing import CliRunner

from detector import simulate as sim
from detector.cli import app
from detector.model import artifact

runner = CliRunner()


@pytest.fixture(scope="module")
def unseen(tmp_path_factory):
    """A small world with a seed and size no pool uses."""
    out = tmp_path_factory.mktemp("unseen")
    world = sim.simulate(sim.scenario("default", accounts=240, days=6, seed=4242, volume_scale=0.4))
    for name in ("requests", "accounts", "labels"):
        getattr(world, name).write_parquet(out / f"{name}.parquet")
    return out


def _train(requests, labels, model_out, *extra):
    args = ["train", "--requests", requests, "--labels", labels, "--model-out", model_out, *extra]
    return runner.invoke(app, [str(a) for a in args])


def _score(args):
    result = runner.invoke(app, ["score", *map(str, args)])
    assert result.exit_code == 0, result.output
    return result


def _check_contract(out, requests):
    scores = pl.read_parquet(out / "account_scores.parquet")
    campaigns = pl.read_parquet(out / "campaigns.parquet")
    assert scores.schema["account_id"] == pl.String
    assert scores.schema["score"] == pl.Float64
    assert scores.schema["flagged"] == pl.Boolean
    assert scores.schema["campaign_id"] == pl.String
    assert scores.schema["reasons"] == pl.List(pl.String)
    assert scores["score"].is_between(0, 1).all()
    assert set(scores["status"]) <= {"flagged", "review", "clear"}
    assert (scores["flagged"] == (scores["status"] == "flagged")).all()
    # held as unfamiliar: in no campaign; held as not corroborated: may sit in a reported cell
    unfamiliar = scores.filter(
        (pl.col("status") == "review")
        & ~pl.col("reasons").list.first().str.starts_with("held for review, not corroborated")
    )
    assert unfamiliar["campaign_id"].is_null().all()
    assert sorted(scores["account_id"]) == sorted(requests["account_id"].unique())
    for col in (
        "campaign_id",
        "score",
        "n_accounts",
        "first_seen",
        "last_seen",
        "n_requests",
        "reasons",
    ):
        assert col in campaigns.columns
    # flagged accounts carry reasons; every reported campaign's members point back to it
    assert scores.filter("flagged")["reasons"].list.len().min() >= 1
    members = scores.filter(pl.col("campaign_id").is_not_null()).group_by("campaign_id").len()
    joined = campaigns.join(members, on="campaign_id")
    assert (joined["n_accounts"] == joined["len"]).all() and joined.height == campaigns.height
    return scores, campaigns


def test_shipped_model_scores_an_unseen_world(unseen, tmp_path):
    out = tmp_path / "scored"
    result = _score(
        [
            "--requests",
            unseen / "requests.parquet",
            "--accounts",
            unseen / "accounts.parquet",
            "--out",
            out,
        ]
    )
    assert "shipped default" in result.stdout and "flagged" in result.stdout
    assert "held for review" in result.stdout
    requests = pl.read_parquet(unseen / "requests.parquet")
    scores, campaigns = _check_contract(out, requests)
    labelled = scores.join(pl.read_parquet(unseen / "labels.parquet"), on="account_id")
    assert average_precision_score(labelled["label"], labelled["score"]) > 0.8
    caught = labelled.filter(pl.col("label") == 1)["flagged"].mean()
    false_pos = labelled.filter(pl.col("label") == 0)["flagged"].mean()
    assert caught > 0.5 and false_pos < 0.02
    assert campaigns.height >= 1


def test_train_then_score_with_own_labels(unseen, tmp_path):
    model = tmp_path / "model"
    result = _train(
        unseen / "requests.parquet",
        unseen / "labels.parquet",
        model,
        "--accounts",
        unseen / "accounts.parquet",
        "--epochs",
        "15",
    )
    assert result.exit_code == 0, result.output
    assert "Validation (held-out clusters)" in result.stdout
    meta = json.loads((model / "model.json").read_text())
    assert meta["trained_on"]["source"] == "provider labels"
    other = sim.simulate(sim.scenario("default", accounts=200, days=5, seed=777, volume_scale=0.4))
    (tmp_path / "w").mkdir()
    other.requests.write_parquet(tmp_path / "w" / "r.parquet")
    other.accounts.write_parquet(tmp_path / "w" / "a.parquet")
    out = tmp_path / "scored"
    _score(
        [
            "--requests",
            tmp_path / "w" / "r.parquet",
            "--accounts",
            tmp_path / "w" / "a.parquet",
            "--out",
            out,
            "--model",
            model,
        ]
    )
    scores, _ = _check_contract(out, other.requests)
    labelled = scores.join(other.labels, on="account_id")
    assert average_precision_score(labelled["label"], labelled["score"]) > 0.7


def test_bad_rows_are_skipped_and_kept_not_fatal(unseen, tmp_path):
    rows = pl.read_parquet(unseen / "requests.parquet").head(3000)
    src = tmp_path / "r.jsonl"
    rows.write_ndjson(src)
    with src.open("a") as fh:
        fh.write("{not json\n")
        fh.write(
            '{"request_id": "x", "ts": "yesterday", "account_id": "a", "request_model": "m", "prompt": "p"}\n'
        )
    out = tmp_path / "scored"
    result = _score(["--requests", src, "--out", out])
    assert "2 rejected row(s)" in result.stdout
    quarantine = pl.read_parquet(out / "quarantine.parquet")
    assert quarantine.height == 2 and quarantine["reason"].null_count() == 0
    _check_contract(out, rows)


def test_unreadable_inputs_exit_2_naming_them(unseen, tmp_path):
    result = runner.invoke(
        app,
        ["score", "--requests", str(tmp_path / "missing.parquet"), "--out", str(tmp_path / "o")],
    )
    assert result.exit_code == 2 and "missing.parquet" in result.output
    wrong = tmp_path / "wrong.parquet"
    pl.DataFrame({"account_id": ["a"], "prompt": ["p"]}).write_parquet(wrong)
    result = runner.invoke(app, ["score", "--requests", str(wrong), "--out", str(tmp_path / "o")])
    assert (
        result.exit_code == 2 and "wrong.parquet" in result.output and "request_id" in result.output
    )
    junk = tmp_path / "junk.jsonl"
    junk.write_text("{broken\n[1, 2]\n")
    result = runner.invoke(app, ["score", "--requests", str(junk), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "no usable request rows" in result.output


def test_bad_model_and_labels_exit_2(unseen, tmp_path):
    args = ["--requests", str(unseen / "requests.parquet"), "--out", str(tmp_path / "o")]
    result = runner.invoke(app, ["score", *args, "--model", str(tmp_path)])
    assert result.exit_code == 2 and "not a model directory" in result.output
    broken = tmp_path / "m"
    shutil.copytree(artifact.DEFAULT, broken)
    meta = json.loads((broken / "model.json").read_text())
    meta["feature_set"] = "account-v0"
    (broken / "model.json").write_text(json.dumps(meta))
    result = runner.invoke(app, ["score", *args, "--model", str(broken)])
    assert result.exit_code == 2 and "retrain" in result.output
    labels = tmp_path / "labels.parquet"
    pl.DataFrame({"account_id": ["a"], "verdict": [1]}).write_parquet(labels)
    result = _train(unseen / "requests.parquet", labels, tmp_path / "x")
    assert result.exit_code == 2 and "lacks column(s) ['label']" in result.output


def test_train_refuses_labels_without_campaigns(unseen, tmp_path):
    labels = tmp_path / "labels.parquet"
    pl.read_parquet(unseen / "labels.parquet").with_columns(pl.lit(0).alias("label")).write_parquet(
        labels
    )
    result = _train(unseen / "requests.parquet", labels, tmp_path / "x", "--epochs", "2")
    assert result.exit_code == 2 and "no campaign accounts" in result.output


def test_saved_model_scores_like_the_trained_one(tmp_path):
    fitted, meta = artifact.load()
    artifact.save(fitted, tmp_path / "copy", meta["trained_on"])
    again, _ = artifact.load(tmp_path / "copy")
    assert again.threshold == fitted.threshold
    for a, b in zip(fitted.net.state_dict().values(), again.net.state_dict().values(), strict=True):
        assert (a == b).all()


def test_score_warns_when_it_flags_far_more_than_in_validation(unseen, tmp_path):
    eager = tmp_path / "eager"
    shutil.copytree(artifact.DEFAULT, eager)
    meta = json.loads((eager / "model.json").read_text())
    meta["threshold"] = 0.0  # the network flags every account ...
    (eager / "model.json").write_text(json.dumps(meta))
    args = ["--requests", unseen / "requests.parquet", "--out", tmp_path / "out"]
    held = _score([*args, "--model", eager])  # ... the views hold most: far more than usual
    assert "warning:" in held.output and "held for review (validation:" in held.output
    meta["view_thresholds"] = [None for _ in meta["view_thresholds"]]  # ... and no view vetoes
    (eager / "model.json").write_text(json.dumps(meta))
    warned = _score([*args, "--model", eager])
    assert "warning:" in warned.output and "flagged in validation" in warned.output
    assert "distillguard train" in warned.output
    calm = _score([*args, "--accounts", unseen / "accounts.parquet"])
    assert "flagged in validation" not in calm.output


def test_score_on_a_store_matches_score_on_its_logs_without_reingesting(unseen, tmp_path):
    store = tmp_path / "store"
    ingested = runner.invoke(
        app,
        ["ingest", str(unseen / "requests.parquet"), str(unseen / "accounts.parquet")]
        + ["--store", str(store)],
    )
    assert ingested.exit_code == 0, ingested.output
    files = sorted((store / "requests").rglob("*.parquet"))
    stamps = [f.stat().st_mtime_ns for f in files]
    logs, stored = tmp_path / "logs", tmp_path / "stored"
    _score(
        ["--requests", unseen / "requests.parquet", "--accounts", unseen / "accounts.parquet"]
        + ["--out", logs]
    )
    result = _score(["--store", store, "--out", stored])
    assert "in store" in result.output and "Nothing re-ingested" in result.output
    for name in ("account_scores", "campaigns", "rule_hits"):
        assert pl.read_parquet(stored / f"{name}.parquet").equals(
            pl.read_parquet(logs / f"{name}.parquet")
        ), name
    # the store's request files were only read; the signals it computed are cached in it
    assert sorted((store / "requests").rglob("*.parquet")) == files
    assert [f.stat().st_mtime_ns for f in files] == stamps
    cached = {f: f.stat().st_mtime_ns for f in (store / "_derived").rglob("signals-*.parquet")}
    assert cached
    again = tmp_path / "again"
    _score(["--store", store, "--out", again, "--date", "2026-02-06", "--window", "2d"])
    # reused, not redone
    assert {
        f: f.stat().st_mtime_ns for f in (store / "_derived").rglob("signals-*.parquet")
    } == cached
    assert (
        pl.read_parquet(again / "account_scores.parquet").height
        <= pl.read_parquet(stored / "account_scores.parquet").height
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give either --requests"),
        (["--requests", "r.parquet", "--store", "s"], "give either --requests"),
        (["--store", "s", "--accounts", "a.parquet"], "--accounts goes with --requests"),
        (["--store", "nowhere"], "not a store"),
    ],
)
def test_score_needs_exactly_one_source(tmp_path, args, message):
    result = runner.invoke(app, ["score", "--out", str(tmp_path / "o"), *args])
    assert result.exit_code == 2
    assert message in result.output
