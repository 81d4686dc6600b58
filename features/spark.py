"""The feature pipeline on Apache Spark: the same code, another engine.

Per-request signals are `features.signals.request_signals`, run on each Arrow batch by Spark's
`mapInArrow`; the per-account aggregation is the registry's SQL (`features.aggregate`), written
once in DuckDB's dialect and transpiled to Spark SQL by SQLGlot; the sign-up range of each
account is `features.signals.with_signup_subnet`, also through `mapInArrow`. The store is read
from any Hadoop-compatible path (`file://`, `hdfs://`, `s3a://`, `abfss://`, `gs://`).

Spark has no unsigned integers: the 64-bit hashes travel as DECIMAL(20, 0), which keeps their
values exact (grouping, distinct counts and the `% 2147483647` of MinHash agree with DuckDB).
ANSI mode is off so that division by zero and casts behave as in DuckDB (NULL, not an error).
PySpark is an optional extra: `pip install 'distillguard[spark]'` (Java 17 or later).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import polars as pl
import pyarrow as pa
import sqlglot
from sqlglot import exp

from features.aggregate import feature_sql
from features.pipeline import SIGNAL_INPUTS, Window
from features.schema import ACCOUNTS, REQUESTS, polars_schema
from features.signals import request_signals, with_signup_subnet

CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.ansi.enabled": "false",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.shuffle.partitions": "16",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.sources.partitionColumnTypeInference.enabled": "false",
}


def session(master: str = "local[*]", conf: dict[str, str] | None = None):
    """A SparkSession with the settings the SQL relies on (an existing one is reused). Under
    spark-submit, its master and Python win over `master`."""
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:  # the optional extra
        raise RuntimeError(
            "Spark engine needs PySpark: pip install 'distillguard[spark]' (and Java 17+)"
        ) from exc
    builder = SparkSession.builder.appName("distillguard")
    if "PYSPARK_GATEWAY_PORT" not in os.environ:  # not under spark-submit: ours to configure
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        builder = builder.master(master)
        if master.startswith("local"):  # containers often cannot resolve their own hostname
            builder = builder.config("spark.driver.host", "127.0.0.1").config(
                "spark.driver.bindAddress", "127.0.0.1"
            )
    for key, value in (CONF | (conf or {})).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    for key, value in CONF.items():  # a reused session gets the SQL settings too
        if key.startswith("spark.sql."):
            spark.conf.set(key, value)
    return spark


def _same_numbers(node: exp.Expression) -> exp.Expression:
    """Where the dialects' numbers differ, make Spark compute as DuckDB does: a literal like
    1.0 is DOUBLE (Spark would make it DECIMAL and round averages to 6 places), and `epoch(ts)`
    keeps its microseconds (Spark's UNIX_TIMESTAMP drops them)."""
    if isinstance(node, exp.Literal) and not node.is_string and "." in node.this:
        return exp.cast(node.copy(), exp.DataType.build("DOUBLE"))
    if isinstance(node, exp.TimeToUnix):
        micros = exp.Anonymous(this="UNIX_MICROS", expressions=[node.this.copy()])
        return exp.Div(this=micros, expression=exp.Literal.number(1_000_000))
    return node


def to_spark(sql: str) -> str:
    """DuckDB SQL (the one source) as Spark SQL."""
    return ";\n".join(
        tree.transform(_same_numbers).sql(dialect="spark")
        for tree in sqlglot.parse(sql, read="duckdb")
    )


def _spark_arrow(table: pa.Table) -> pa.Table:
    """Arrow types Spark takes: unsigned 64-bit as DECIMAL(20, 0), large strings as strings."""
    fields = []
    for field in table.schema:
        if pa.types.is_uint64(field.type):
            fields.append(pa.field(field.name, pa.decimal128(20, 0)))
        elif pa.types.is_unsigned_integer(field.type):
            fields.append(pa.field(field.name, pa.int64()))
        elif pa.types.is_large_string(field.type):
            fields.append(pa.field(field.name, pa.string()))
        elif pa.types.is_large_list(field.type):
            fields.append(pa.field(field.name, pa.list_(field.type.value_type)))
        else:
            fields.append(field)
    return table.cast(pa.schema(fields))


def _signal_batches(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        yield from _spark_arrow(request_signals(batch).to_arrow()).to_batches()


def _account_batches(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        yield from _spark_arrow(with_signup_subnet(pl.from_arrow(batch)).to_arrow()).to_batches()


def _schema_of(sample: pl.DataFrame):
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(_spark_arrow(sample.to_arrow()).schema)


def _empty(table) -> pl.DataFrame:
    return pl.DataFrame(schema=polars_schema(table))


def register(spark, store_uri: str, window: Window) -> bool:
    """Temp views `signals` (the window's requests, through `request_signals`), `accounts`
    (latest row per account, with `signup_subnet`) and `firsts` (each model's first request in
    the whole store). False when the window has no requests."""
    from pyspark.sql import functions as F

    root = store_uri.rstrip("/")
    requests = spark.read.option("basePath", f"{root}/requests").parquet(f"{root}/requests")
    days = [d.isoformat() for d in window.dates]
    chosen = requests.where(F.col("dt").isin(days))
    present = [c for c in SIGNAL_INPUTS if c in chosen.columns]
    chosen = chosen.select(*present)
    if chosen.limit(1).count() == 0:
        return False
    shape = request_signals(_empty(REQUESTS).select(present))
    # the SQL reads the signals many times over: compute them once, into the store's derived
    # area (Spark would otherwise rerun the Python of every plan that mentions them)
    derived = f"{root}/_derived/spark-signals/end={window.end.isoformat()}-days={window.days}"
    chosen.mapInArrow(_signal_batches, _schema_of(shape)).write.mode("overwrite").parquet(derived)
    spark.read.parquet(derived).createOrReplaceTempView("signals")
    (
        requests.groupBy("request_model")
        .agg((F.min(F.unix_micros("ts")) / 1e6).alias("first_t"))
        .createOrReplaceTempView("firsts")
    )
    accounts = _latest_accounts(spark, root)
    shape = with_signup_subnet(None)
    if accounts is None:
        spark.createDataFrame([], _schema_of(shape)).createOrReplaceTempView("accounts")
    else:
        accounts.mapInArrow(_account_batches, _schema_of(shape)).createOrReplaceTempView("accounts")
    return True


def _latest_accounts(spark, root: str):
    """The newest `accounts-*.parquet` of the store (names sort by commit), or None."""
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(f"{root}/accounts")
    fs = path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    if not fs.exists(path):
        return None
    names = sorted(
        str(s.getPath().toString())
        for s in fs.listStatus(path)
        if s.getPath().getName().startswith("accounts-")
        and s.getPath().getName().endswith(".parquet")
    )
    if not names:
        return None
    frame = spark.read.parquet(names[-1])
    wanted = [c for c in ACCOUNTS.names if c in frame.columns]
    return frame.select(*wanted)


def collect(frame) -> pl.DataFrame:
    """A Spark DataFrame as polars (through Arrow), decimals back to unsigned 64-bit."""
    table = frame.toArrow()
    out = pl.from_arrow(table)
    if isinstance(out, pl.Series):
        out = out.to_frame()
    decimals = [c for c, t in out.schema.items() if isinstance(t, pl.Decimal)]
    return out.with_columns(pl.col(decimals).cast(pl.UInt64))


def features(spark, store_uri: str, window: Window) -> pl.DataFrame:
    """Per-account features of the window, computed by Spark (same columns and order as
    `features.pipeline.compute`)."""
    if not register(spark, store_uri, window):
        return pl.DataFrame()
    sql = feature_sql("signals", "accounts", window.start_s, window.end_s, "firsts")
    return collect(spark.sql(to_spark(sql)))
