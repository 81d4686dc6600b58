"""Operations: the campaign cells (link clusters) and lone flagged accounts one playbook runs.

A link cluster is a *cell*: accounts tied by shared infrastructure, templates or lockstep. An
operation runs many cells (a hydra on six proxy ranges is six cells) and the cells share what
the operation is, not where it runs from: the same dataset items sent from every cell, the
same prompt templates and system prompts, the same client build, the same minute of a model
pivot, members acting in lockstep across cells. This module joins cells on that fingerprint.

**Units.** Every reported cell, and every flagged account in no reported cell. A cell's
members are its flagged accounts and those tied to one of them by more than corroborating
links (`pipeline.scoring._tied`): a customer who shares only a common client string and sign-up
day with a campaign sits beside it, not in it.

**Fingerprint elements** (`ELEMENTS_SQL`, over the window's `signals`): per account, the task
texts it sent (`task`: the masked prompt), template openings (`template`), system prompts
(`system`), client strings (`client`) and the hour it first used the newest model
(`pivot`). Only values held by 2 to `max_sharing` accounts of the window are kept: a value
everyone sends (a popular benchmark item, the default SDK string) is no evidence, and the
rarity weight `1 / log2(1 + holders)` says how much one shared value is worth.

**The rule.** Two units are *joined* when (a) their evidence reaches `min_evidence`, summed
over element kinds, each in [0, 1]: for task texts, templates and system prompts the weighted
overlap (rarity weight of the shared values over the smaller unit's total: 0.5 means half
of what the smaller unit shares with anyone, it shares with the other); for a client
string or pivot hour `single_weight` times its rarity weight; for lockstep the share of the
smaller unit's members with a lockstep edge to the other (the window's lockstep edges, and
`lockstep.focus_edges` among the units' own accounts: a swarm too quiet to make a burst in
the whole population still acts together among the accounts under review); and (b) their
members behave alike: the cosine of their mean robust-standardised feature vectors is at least
`min_behaviour` between two cells (0.9: joining cells merges cases, the costlier mistake) or
`min_behaviour_lone` between a cell and a lone account (0.7: one account's vector is noisy,
and an attachment can never merge two operations), so two playbooks that happen to share some
values stay apart. An operation is a connected set of joined cells. A lone flagged account
joins the one operation it is most strongly joined to and never bridges two; lone accounts
alone never make an operation (a campaign needs a reported cell, as before). Every join is
kept with its evidence: that is what an analyst cites.
"""

from __future__ import annotations

from dataclasses import dataclass

import igraph as ig
import numpy as np
import polars as pl

from detector.linking.edges import robust_scale
from detector.linking.lockstep import LockstepConfig

ELEMENT_KINDS = {
    "task": "task texts",
    "template": "prompt templates",
    "system": "system prompts",
    "client": "client strings",
    "pivot": "first use of the newest model in the same hour",
}


def elements_sql(max_sharing: int = 200, switch_max_lag_h: float = 48.0) -> str:
    """Per account, the fingerprint values it shares with 2..max_sharing accounts, over
    `signals` and `newest` (`detector.linking.NEWEST`): account_id, kind, value, holders."""
    return f"""
WITH v AS (
  SELECT DISTINCT account_id, 'task' AS kind, CAST(skeleton_hash AS VARCHAR) AS value
  FROM signals WHERE prompt_chars >= 20
  UNION ALL
  SELECT DISTINCT account_id, 'template' AS kind, CAST(head_hash AS VARCHAR) AS value
  FROM signals WHERE prompt_chars >= 20
  UNION ALL
  SELECT DISTINCT account_id, 'system' AS kind, CAST(system_hash AS VARCHAR) AS value
  FROM signals WHERE system_chars > 0
  UNION ALL
  SELECT DISTINCT account_id, 'client' AS kind, user_agent AS value
  FROM signals WHERE user_agent IS NOT NULL
  UNION ALL
  SELECT s.account_id, 'pivot' AS kind,
    CAST(CAST(floor(min(s.t_s) / 3600) AS BIGINT) AS VARCHAR) AS value
  FROM signals AS s JOIN newest AS n ON s.request_model = n.request_model
  GROUP BY s.account_id
  HAVING min(s.t_s) - max(n.first_t) <= {switch_max_lag_h * 3600}
),
g AS (
  SELECT kind, value, count(*) AS holders FROM v GROUP BY kind, value
  HAVING count(*) BETWEEN 2 AND {max_sharing}
)
SELECT v.account_id, v.kind, v.value, g.holders
FROM v JOIN g ON v.kind = g.kind AND v.value = g.value"""


ELEMENTS = {"account_id": pl.String, "kind": pl.String, "value": pl.String, "holders": pl.Int64}


@dataclass(frozen=True)
class OperationConfig:
    min_evidence: float = 0.5
    min_behaviour: float = 0.9
    min_behaviour_lone: float = 0.7
    single_weight: float = 0.5
    min_values: int = 10
    min_own: float = 0.2
    lockstep: LockstepConfig = LockstepConfig()  # the lockstep test among units' accounts

    def __post_init__(self) -> None:
        if self.min_evidence <= 0 or self.single_weight < 0:
            raise ValueError("min_evidence must be positive and single_weight not negative")
        for name in ("min_behaviour", "min_behaviour_lone"):
            if not -1 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} is a cosine in [-1, 1], got {getattr(self, name)}")


JOINS = {
    "a": pl.String,
    "b": pl.String,
    "evidence": pl.Float64,
    "behaviour": pl.Float64,
    "why": pl.List(pl.String),
}


@dataclass(frozen=True)
class Operations:
    """`assignment`: unit, operation (the operation's first cell), joined_by (the unit's joins
    inside its operation, as text), for every unit in an operation (a unit is a cell name, or
    `account:<id>` for a lone account); `joins`: every pair of units joined (JOINS);
    `attribution`: operation -> the fingerprint elements that join its cells, as text."""

    assignment: pl.DataFrame
    joins: pl.DataFrame
    attribution: dict[str, list[str]]


def behaviour_vectors(
    features: pl.DataFrame, columns: list[str], keep: pl.Series
) -> dict[str, np.ndarray]:
    """The log-scaled feature vectors of the accounts in `keep`, robustly standardised
    against the whole population of `features` (`edges.robust_scale`), clipped to +-8."""
    x = robust_scale(features.select(columns).fill_null(0.0).to_numpy().astype(np.float64))
    rows = features.with_row_index("row").filter(pl.col("account_id").is_in(keep.implode()))
    picked = np.clip(x[rows["row"].to_numpy()], -8, 8)
    return dict(zip(rows["account_id"].to_list(), picked, strict=True))


SET_KINDS = ("task", "system")


def _shared(held: pl.DataFrame, cfg: OperationConfig) -> pl.DataFrame:
    """Per pair of units (a < b) and element kind: shared values and their evidence. For the
    set kinds (task texts, templates, system prompts) the evidence is a weighted overlap: the
    rarity weight of what they share over the smaller unit's total, scaled down below
    `min_values` shared values (a unit that sent six texts shares all six easily) and below
    `min_own`, the mean share of a shared value's holders that are members of the two units (a
    text that many other customers send too, a public dataset, says little about these two):
    two cells that send one dataset score near 1, two playbooks that meet on common items near 0. A
    client string or pivot hour is one value per account: it counts `single_weight` times its
    rarity weight, supporting evidence only."""
    weighted = held.with_columns((1.0 / (1.0 + pl.col("holders")).log(2)).alias("w"))
    totals = weighted.group_by("unit", "kind").agg(pl.col("w").sum().alias("total"))
    pairs = (
        weighted.join(
            weighted.select("unit", "kind", "value", "members"), on=["kind", "value"], suffix="_b"
        )
        .filter(pl.col("unit") < pl.col("unit_b"))
        .group_by(pl.col("unit").alias("a"), pl.col("unit_b").alias("b"), "kind")
        .agg(
            pl.len().alias("n"),
            pl.col("w").sum().alias("shared"),
            ((pl.col("members") + pl.col("members_b")) / pl.col("holders")).mean().alias("own"),
            pl.col("value").sort().first().alias("example"),
        )
        .join(totals.rename({"unit": "a", "total": "total_a"}), on=["a", "kind"])
        .join(totals.rename({"unit": "b", "total": "total_b"}), on=["b", "kind"])
    )
    overlap = (
        pl.col("shared")
        / pl.min_horizontal("total_a", "total_b")
        * pl.min_horizontal(pl.col("n") / cfg.min_values, pl.lit(1.0))
        * pl.min_horizontal(pl.col("own") / cfg.min_own, pl.lit(1.0))
    )
    return pairs.select(
        "a",
        "b",
        "kind",
        "n",
        pl.when(pl.col("kind").is_in(SET_KINDS))
        .then(overlap)
        .when(pl.col("kind") == "template")
        .then(overlap * cfg.single_weight)
        .otherwise(pl.col("shared") * cfg.single_weight)
        .clip(0.0, 1.0)
        .alias("w"),
        "example",
    )


def _lockstep(units: pl.DataFrame, edges: pl.DataFrame) -> pl.DataFrame:
    """Per pair of units: lockstep edges between their members, as evidence the share of the
    smaller unit's members that have one (1: every member of the smaller unit does)."""
    size = units.group_by("unit").len("size")
    ls = edges.filter(pl.col("edge_type") == "lockstep").select("src", "dst")
    ends = (
        ls.join(units.rename({"account_id": "src", "unit": "ua"}), on="src")
        .join(units.rename({"account_id": "dst", "unit": "ub"}), on="dst")
        .filter(pl.col("ua") != pl.col("ub"))
        .select(
            pl.min_horizontal("ua", "ub").alias("a"),
            pl.max_horizontal("ua", "ub").alias("b"),
        )
    )
    return (
        ends.group_by("a", "b")
        .len("n")
        .join(size.rename({"unit": "a", "size": "size_a"}), on="a")
        .join(size.rename({"unit": "b", "size": "size_b"}), on="b")
        .select(
            "a",
            "b",
            pl.lit("lockstep").alias("kind"),
            pl.col("n").cast(pl.UInt32),
            (pl.col("n") / pl.min_horizontal("size_a", "size_b")).clip(0.0, 1.0).alias("w"),
            pl.lit(None, pl.String).alias("example"),
        )
    )


def _describe(kind: str, n: int, example: str | None) -> str:
    if kind == "lockstep":
        return f"{n} lockstep link(s) between members"
    if kind == "client":
        return f"client string {example!r}" + (f" and {n - 1} more" if n > 1 else "")
    if kind == "pivot":
        return "first used the newest model in the same hour"
    return f"{n} shared {ELEMENT_KINDS[kind]}"


def join_units(
    units: pl.DataFrame,
    cells: set[str],
    elements: pl.DataFrame,
    edges: pl.DataFrame,
    vectors: dict[str, np.ndarray],
    cfg: OperationConfig = OperationConfig(),
) -> Operations:
    """Operations over `units` (unit, account_id); `cells` names the units that are reported
    cells (the others are lone flagged accounts); `vectors` from `behaviour_vectors`."""
    names = sorted(units["unit"].unique().to_list())
    held = (
        elements.cast(ELEMENTS)
        .join(units, on="account_id")
        .group_by("unit", "kind", "value")
        .agg(pl.col("holders").first(), pl.len().alias("members"))
    )
    lockstep = _lockstep(units, edges)
    evidence = pl.concat([_shared(held, cfg), lockstep]).sort("a", "b", "kind")
    members = {u: m for u, m in units.group_by("unit").agg("account_id").iter_rows()}
    centre = {
        u: np.mean([vectors[a] for a in m if a in vectors], axis=0)
        for u, m in members.items()
        if any(a in vectors for a in m)
    }
    joins = []
    for (a, b), rows in evidence.group_by(["a", "b"], maintain_order=True):
        total = float(rows["w"].sum())
        if total < cfg.min_evidence or a not in centre or b not in centre:
            continue
        va, vb = centre[a], centre[b]
        cos = float(va @ vb / max(np.linalg.norm(va) * np.linalg.norm(vb), 1e-12))
        both_cells = a in cells and b in cells
        if cos < (cfg.min_behaviour if both_cells else cfg.min_behaviour_lone):
            continue
        why = [_describe(k, n, e) for k, n, e in rows.select("kind", "n", "example").iter_rows()]
        joins.append((a, b, total, cos, why))
    joins_frame = pl.DataFrame(joins, schema=JOINS, orient="row")
    assignment, kept = _assemble(names, cells, joins_frame)
    operation = dict(assignment.select("unit", "operation").iter_rows())
    return Operations(assignment, kept, attribution(held, lockstep, operation, kept))


def _assemble(
    names: list[str], cells: set[str], joins: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Components of the cell-cell joins; then each lone account to its strongest operation."""
    index = {u: i for i, u in enumerate(names)}
    cell_joins = joins.filter(pl.col("a").is_in(cells) & pl.col("b").is_in(cells))
    graph = ig.Graph(
        n=len(names),
        edges=[(index[a], index[b]) for a, b in cell_joins.select("a", "b").iter_rows()],
    )
    component = graph.connected_components().membership
    first: dict[int, str] = {}
    for u in names:  # sorted: an operation is named by its first cell
        if u in cells:
            first.setdefault(component[index[u]], u)
    operation = {u: first[component[index[u]]] for u in names if u in cells}
    lone_links = joins.filter(pl.col("a").is_in(cells) ^ pl.col("b").is_in(cells)).with_columns(
        pl.when(pl.col("a").is_in(cells)).then("b").otherwise("a").alias("lone"),
        pl.when(pl.col("a").is_in(cells)).then("a").otherwise("b").alias("cell"),
    )
    if not lone_links.is_empty():
        best = (
            lone_links.with_columns(
                pl.col("cell").replace_strict(operation, return_dtype=pl.String).alias("op")
            )
            .group_by("lone", "op")
            .agg(pl.col("evidence").sum())
            .sort(["lone", "evidence", "op"], descending=[False, True, False])
            .group_by("lone", maintain_order=True)
            .first()
        )
        operation |= dict(best.select("lone", "op").iter_rows())
    kept = joins.filter(
        pl.col("a").is_in(list(operation))
        & pl.col("b").is_in(list(operation))
        & (
            pl.col("a").replace_strict(operation, default=None)
            == pl.col("b").replace_strict(operation, default=None)
        )
    )
    joined_by: dict[str, list[str]] = {u: [] for u in operation}
    for a, b, why in kept.select("a", "b", "why").iter_rows():
        joined_by[a].append(f"with {b}: " + "; ".join(why))
        joined_by[b].append(f"with {a}: " + "; ".join(why))
    assignment = pl.DataFrame(
        {
            "unit": list(operation),
            "operation": list(operation.values()),
            "joined_by": [joined_by[u] for u in operation],
        },
        schema={"unit": pl.String, "operation": pl.String, "joined_by": pl.List(pl.String)},
    ).sort("unit")
    return assignment, kept


def attribution(
    held: pl.DataFrame, lockstep: pl.DataFrame, operation: dict[str, str], behaviour: pl.DataFrame
) -> dict[str, list[str]]:
    """Per operation of more than one unit, the fingerprint elements that join its units, with
    counts an analyst can cite ("412 task texts sent from 6 cells"). `held`: unit, kind, value;
    `lockstep`: a, b, n; `behaviour`: the operation's joins (a, b, behaviour)."""
    op = pl.col("unit").replace_strict(operation, default=None, return_dtype=pl.String)
    shared = (
        held.with_columns(op.alias("op"))
        .filter(pl.col("op").is_not_null())
        .with_columns(pl.len().over("op", "kind", "value").alias("units_holding"))
        .filter(pl.col("units_holding") >= 2)
        .group_by("op", "kind")
        .agg(
            pl.col("value").n_unique().alias("values"),
            pl.col("unit").n_unique().alias("units"),
            pl.col("value").sort().first().alias("example"),
        )
        .sort("op", "values", "kind", descending=[False, True, False])
    )
    sizes = pl.Series(list(operation.values())).value_counts()
    out: dict[str, list[str]] = {o: [] for o, n in sizes.iter_rows() if n > 1}
    for o, kind, values, units, example in shared.iter_rows():
        if o not in out:
            continue
        if kind == "client":
            what = f"client string {example!r}" + (
                f" (and {values - 1} more)" if values > 1 else ""
            )
        elif kind == "pivot":
            what = "first use of the newest model in the same hour"
        else:
            what = f"the same {values:,} {ELEMENT_KINDS[kind]}"
        out[o].append(f"{what} sent from {units} of its cells")
    steps = lockstep.with_columns(
        pl.col("a").replace_strict(operation, default=None, return_dtype=pl.String).alias("op"),
        pl.col("b").replace_strict(operation, default=None, return_dtype=pl.String).alias("op_b"),
    ).filter(pl.col("op").is_not_null() & (pl.col("op") == pl.col("op_b")))
    for o, n, pairs in (
        steps.group_by("op").agg(pl.col("n").sum(), pl.len().alias("pairs")).sort("op").iter_rows()
    ):
        if o in out:
            out[o].append(f"{n} lockstep link(s) between members of {pairs} pair(s) of its cells")
    for o, low in (
        behaviour.with_columns(
            pl.col("a").replace_strict(operation, default=None, return_dtype=pl.String).alias("op")
        )
        .group_by("op")
        .agg(pl.col("behaviour").min())
        .sort("op")
        .iter_rows()
    ):
        if o in out:
            out[o].append(f"joined cells behave alike (feature cosine {low:.2f} or more)")
    return {o: lines for o, lines in sorted(out.items())}
