"""Per-request signals: vectorised polars expressions over one batch of canonical requests.

`request_signals` takes and returns Arrow-compatible frames with no Python loop per row, so the
same function runs in a local stream of Parquet batches and inside Spark's `mapInArrow`.
Text signals look at bounded slices of the prompt, so cost per row is bounded too.
"""

from __future__ import annotations

import polars as pl
import pyarrow as pa

from features.markers import FAMILIES
from features.schema import ACCOUNTS, REQUESTS, polars_schema

CANONICAL = polars_schema(REQUESTS)

SKELETON_HEAD = 240
SKELETON_TAIL = 120
MARKER_CHARS = 4000
EDGE_CHARS = 60
MINHASH_WORDS = 48
MINHASH_SEEDS = (101, 202, 303, 404, 505, 606)
MASK = (
    r"```[\s\S]*?```"  # code blocks
    r"|\"[^\"\n]{0,200}\"|“[^”\n]{0,200}”|«[^»\n]{0,200}»|'[^'\n]{2,200}'"  # quoted spans
    r"|https?://\S+|[\w.+-]+@[\w-]+\.[\w.]+"  # urls, e-mails
    r"|[0-9]+(?:[.,:/-][0-9]+)*"  # numbers, dates, times
    r"|(?-u:\b)[A-Z][a-z]+(?:\s+[A-Z][a-z]+)*(?-u:\b)|[А-ЯЁ][а-яё]+"  # capitalised names
)
"""Spans masked in a skeleton. ASCII word boundaries keep Rust's fast regex engine in play."""
WHITESPACE = ["\n", "\t", "\r", "\x0b", "\x0c"]
"""Turned into spaces with Aho-Corasick (a whitespace regex costs four times as much); runs of up
to eight spaces then collapse to one."""
CARRIED = (
    "account_id",
    "api_key_id",
    "end_user_id",
    "source_ip",
    "user_agent",
    "request_model",
    "is_batch",
    "n_messages",
    "n_tools",
    "thinking_mode",
    "thinking_budget_tokens",
    "finish_reason",
    "usage_input_tokens",
    "usage_output_tokens",
    "usage_reasoning_tokens",
    "status_code",
)
"""Canonical columns the aggregation and linking read, passed through unchanged."""
SIGNALS_VERSION = "2"


def skeleton(text: pl.Expr) -> pl.Expr:
    """Prompt with names, numbers, quoted spans, code and links masked, whitespace collapsed."""
    head = text.str.slice(0, SKELETON_HEAD)
    tail = pl.when(text.str.len_chars() > SKELETON_HEAD + SKELETON_TAIL).then(
        pl.lit(" … ") + text.str.slice(-SKELETON_TAIL)
    )
    body = pl.concat_str([head, tail], ignore_nulls=True)
    return (
        body.str.replace_all(MASK, "§")
        .str.to_lowercase()
        .str.replace_many(WHITESPACE, [" "] * len(WHITESPACE))
        .str.replace_all("    ", " ", literal=True)
        .str.replace_all("  ", " ", literal=True)
        .str.replace_all("  ", " ", literal=True)
        .str.strip_chars()
    )


def _minhash(words: pl.Expr, seed: int) -> pl.Expr:
    """One MinHash of a word set: the minimum of a seeded hash over the words."""
    return words.list.eval(pl.element().hash(seed=seed)).list.min()


def with_signup_subnet(accounts: pl.DataFrame | None) -> pl.DataFrame:
    """The accounts table in canonical dtypes plus its sign-up range (`signup_subnet`)."""
    schema = polars_schema(ACCOUNTS)
    if accounts is None:
        accounts = pl.DataFrame(schema=schema)
    accounts = accounts.with_columns(
        pl.col(c).cast(t) if c in accounts.columns else pl.lit(None, t).alias(c)
        for c, t in schema.items()
    )
    return accounts.with_columns(subnet(pl.col("signup_ip")).alias("signup_subnet"))


def subnet(ip: pl.Expr) -> pl.Expr:
    """The /24 of an IPv4 address or the /48 of an IPv6 address (hashed addresses pass through)."""
    v4 = ip.str.extract(r"^(\d{1,3}\.\d{1,3}\.\d{1,3})\.\d{1,3}$", 1)
    v6 = ip.str.extract(
        r"^([0-9A-Fa-f]{0,4}:[0-9A-Fa-f]{0,4}:[0-9A-Fa-f]{0,4}):", 1
    ).str.to_lowercase()
    return pl.coalesce(v4, v6, ip)


def _marker(text: pl.Expr, family) -> pl.Expr:
    """Whether lower-cased `text` holds one of the family's phrases or patterns."""
    hit = text.str.contains_any(list(family.phrases), ascii_case_insensitive=True)
    for pattern in family.patterns:
        hit = hit | text.str.contains(pattern)
    return hit.fill_null(False).alias(family.name)


SCRIPTS = (
    ("cjk", r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}]"),
    ("cyrillic", r"\p{Cyrillic}"),
    ("other", r"[\p{Arabic}\p{Hebrew}\p{Devanagari}\p{Thai}]"),
)
"""The writing system of a prompt's opening, first match wins; 'latin' when none matches."""
SCRIPT_CHARS = 200
NOT_WORDS = ["§", "…", ""]
"""Tokens of a skeleton that are not words: masks, the head/tail joint and empty splits."""


def _script(prompts: pl.DataFrame) -> pl.Series:
    """The script of each prompt's opening. Only openings with a non-ASCII character can be
    anything but 'latin', so the Unicode-class scans run on those rows alone."""
    head = pl.col("prompt").str.slice(0, SCRIPT_CHARS)
    wide = prompts.select(head.str.len_bytes() > head.str.len_chars()).to_series().arg_true()
    chain = pl.lit("latin")
    for name, pattern in reversed(SCRIPTS):
        chain = pl.when(head.str.contains(pattern)).then(pl.lit(name)).otherwise(chain)
    script = pl.repeat("latin", prompts.height, dtype=pl.String, eager=True).alias("script")
    if wide.len():
        script = script.scatter(wide, prompts[wide].select(chain).to_series())
    return script


def text_signals(prompts: pl.DataFrame) -> pl.DataFrame:
    """The signals that depend on the prompt alone, one row per row of `prompts` (a `prompt`
    column, no nulls). Each prompt is read once here; `request_signals` calls this on the
    distinct prompts of a batch, so a prompt sent a thousand times is masked, scanned and
    hashed once."""
    prompt = pl.col("prompt")
    out = prompts.with_columns(
        skel=skeleton(prompt),
        low=prompt.str.slice(0, MARKER_CHARS).str.to_lowercase(),
    ).with_columns(
        words=pl.col("skel")
        .str.split(" ")
        .list.head(MINHASH_WORDS)
        .list.eval(pl.element().filter(~pl.element().is_in(NOT_WORDS))),
    )
    minhashes = [_minhash(pl.col("words"), seed) for seed in MINHASH_SEEDS]
    return out.select(
        "prompt",
        pl.col("skel").hash(seed=1).alias("skeleton_hash"),
        pl.col("skel").str.slice(0, EDGE_CHARS).hash(seed=2).alias("head_hash"),
        pl.col("skel").str.slice(-EDGE_CHARS).hash(seed=3).alias("tail_hash"),
        pl.concat_list(minhashes[:3]).hash(seed=4).alias("band_1"),
        pl.concat_list(minhashes[3:]).hash(seed=5).alias("band_2"),
        minhashes[0].alias("topic_hash"),
        *[_marker(pl.col("low"), family) for family in FAMILIES],
        prompt.str.len_chars().cast(pl.Int64).alias("prompt_chars"),
    ).with_columns(_script(prompts))


TEXT_SIGNALS = (
    "skeleton_hash",
    "head_hash",
    "tail_hash",
    "band_1",
    "band_2",
    "topic_hash",
    *(family.name for family in FAMILIES),
    "prompt_chars",
)


def request_signals(batch: pl.DataFrame | pa.RecordBatch | pa.Table) -> pl.DataFrame:
    """Signals for each request of a batch (canonical columns in, narrow signal columns out)."""
    frame = batch if isinstance(batch, pl.DataFrame) else pl.from_arrow(batch)
    if isinstance(frame, pl.Series):
        frame = frame.to_frame()
    missing = [c for c in (*CARRIED, "ts", "prompt", "system") if c not in frame.columns]
    untyped = [c for c, t in frame.schema.items() if t == pl.Null and c in CANONICAL]
    frame = frame.with_columns(
        *(pl.lit(None, CANONICAL[c]).alias(c) for c in missing),
        *(pl.col(c).cast(CANONICAL[c]) for c in untyped),
    ).with_columns(pl.col("prompt").fill_null(""))
    texts = text_signals(frame.select(pl.col("prompt").unique()))
    joined = frame.join(texts, on="prompt", how="left", maintain_order="left")
    return joined.select(
        *[pl.col(c) for c in CARRIED],
        *TEXT_SIGNALS,
        pl.col("system").fill_null("").str.len_chars().cast(pl.Int64).alias("system_chars"),
        pl.col("system").fill_null("").hash(seed=7).alias("system_hash"),
        (pl.col("ts").dt.epoch("us") / 1e6).alias("t_s"),
        pl.col("ts").dt.hour().cast(pl.Int8).alias("hour_utc"),
        (pl.col("ts").dt.weekday() - 1).cast(pl.Int8).alias("dow_utc"),
        (pl.col("ts").dt.epoch("d")).cast(pl.Int32).alias("day"),
        subnet(pl.col("source_ip")).alias("subnet"),
        "script",
    )


def signals_arrow(batch: pa.RecordBatch) -> pa.RecordBatch:
    """`request_signals` for one Arrow batch, as Spark's mapInArrow calls it."""
    table = request_signals(batch).to_arrow()
    return table.to_batches()[0] if table.num_rows else pa.RecordBatch.from_pylist([], table.schema)
