"""Golden test: the same store featurised, linked and scored by DuckDB and by Spark agrees.

Counts and strings must be equal; floating-point features and weights may differ only by
summation order (1e-9 absolute); clusters must be the same partition.
"""

from __future__ import annotations

from datetime import timedelta

import duckdb
import polars as pl
import pytest
from typer.testing import CliRunner

from detector import simulate as sim
from detector.cli import app
from detector.pipeline import featurise, surges
from features import pipeline
from features import spark as engine
from tests.conftest import ingest_world

TOLERANCE = 1e-9


@pytest.fixture(scope="module")
def spark():
    session = engine.session("local[2]")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("golden")
    world = sim.simulate(sim.scenario("default", accounts=160, days=5, seed=5, volume_scale=0.4))
    return ingest_world(world, root), world.config.start.date() + timedelta(days=4)


def _same(local: pl.DataFrame, remote: pl.DataFrame, key: list[str]) -> None:
    assert local.columns == remote.columns
    local, remote = local.sort(key), remote.sort(key)
    assert local.height == remote.height > 0
    for column in local.columns:
        a, b = local[column], remote[column]
        assert a.dtype == b.dtype, column
        if a.dtype.is_float():
            gap = (a - b).abs().max()
            assert gap is not None and gap <= TOLERANCE, f"{column}: differs by {gap}"
        else:
            assert a.equals(b), f"{column}: {a.head(3).to_list()} vs {b.head(3).to_list()}"


def test_spark_features_links_and_clusters_equal_duckdb(store, spark):
    path, last = store
    window = pipeline.Window(last, 3)
    local = featurise.featurise(path, window)
    remote = featurise.featurise_spark(spark, f"file://{path}", window)
    _same(local.features, remote.features, ["account_id"])
    assert local.edges.height > 50 and set(local.edges["edge_type"]) >= {"payment", "template"}
    _same(local.edges, remote.edges, ["src", "dst", "edge_type"])
    _same(local.activity, remote.activity, ["account_id"])
    recent = [r.cast(surges.PER_ACCOUNT) for r in (local.recent, remote.recent)]
    assert recent[0]["recent_n"].sum() > 0
    _same(*recent, ["account_id"])
    assert local.minutes.height > 0
    _same(local.minutes, remote.minutes, ["account_id", "w"])
    _same(local.elements, remote.elements, ["account_id", "kind", "value"])
    members = ["account_id", "cluster"]
    assert (
        local.clusters.members.select(members)
        .sort("account_id")
        .equals(remote.clusters.members.select(members).sort("account_id"))
    )


def test_nightly_with_the_spark_engine_scores_as_the_duckdb_one(store, spark, tmp_path):
    path, last = store
    runner = CliRunner()
    scores = {}
    for engine_name in ("duckdb", "spark"):
        warehouse = tmp_path / f"{engine_name}.duckdb"
        result = runner.invoke(
            app,
            [
                "nightly",
                "--store",
                str(path),
                "--date",
                last.isoformat(),
                "--warehouse",
                str(warehouse),
                "--window-days",
                "3",
                "--engine",
                engine_name,
                "--spark-master",
                "local[2]",
            ],  # fmt: skip
        )
        assert result.exit_code == 0, result.output
        con = duckdb.connect(str(warehouse), read_only=True)
        scores[engine_name] = pl.from_arrow(
            con.sql(
                "SELECT account_id, score, flagged, campaign_id FROM account_scores ORDER BY 1"
            ).to_arrow_table()
        )
        con.close()
    local, remote = scores["duckdb"], scores["spark"]
    assert local["flagged"].sum() > 0
    assert local.select("account_id", "flagged", "campaign_id").equals(
        remote.select("account_id", "flagged", "campaign_id")
    )
    assert (local["score"] - remote["score"]).abs().max() <= 1e-6


def test_numbers_are_computed_as_duckdb_does(spark):
    # regression: Spark reads 1.0 as DECIMAL and rounded averages to 6 places (share features
    # differed by 5e-6), and UNIX_TIMESTAMP dropped microseconds (account age)
    sql = (
        "SELECT avg(CASE WHEN x > 0 THEN 1.0 ELSE 0.0 END) AS share, "
        "max(epoch(ts)) AS t FROM (SELECT * FROM (VALUES (1, TIMESTAMP '2026-01-01 00:00:00.123456'), "
        "(0, TIMESTAMP '2026-01-01 00:00:00'), (0, TIMESTAMP '2026-01-01 00:00:00')) AS v(x, ts))"
    )
    local = duckdb.sql(sql).fetchall()[0]
    remote = spark.sql(engine.to_spark(sql)).collect()[0]
    assert remote["share"] == pytest.approx(1 / 3, abs=1e-15) == local[0]
    assert remote["t"] == pytest.approx(local[1], abs=1e-6)
    assert remote["t"] % 1 == pytest.approx(0.123456, abs=1e-6)
