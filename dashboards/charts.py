"""Altair charts for the pages: frames in, charts out (no Streamlit, no queries)."""

from __future__ import annotations

import altair as alt
import igraph as ig
import polars as pl

from detector.linking.edges import EDGE_TYPES

VERDICT_COLOURS = {
    "confirmed": "#c0392b",
    "dismissed": "#27ae60",
    "allow-listed": "#2980b9",
    "reopened": "#8e44ad",
    "none": "#7f8c8d",
}


def layout(nodes: pl.DataFrame, edges: pl.DataFrame, seed: int = 0) -> pl.DataFrame:
    """Node positions (x, y) by Fruchterman-Reingold on the summed link weights; the same
    graph gets the same picture (seeded from a circle)."""
    ids = nodes["account_id"].to_list()
    index = {a: i for i, a in enumerate(ids)}
    pairs = (
        edges.group_by("src", "dst").agg(pl.col("weight").sum()).sort("src", "dst")
        if edges.height
        else pl.DataFrame(schema={"src": pl.String, "dst": pl.String, "weight": pl.Float64})
    )
    graph = ig.Graph(
        n=len(ids), edges=[(index[s], index[d]) for s, d in pairs.select("src", "dst").iter_rows()]
    )
    start = ig.Graph.Ring(max(len(ids), 1)).layout_circle().coords[: len(ids)]
    coords = (
        graph.layout_fruchterman_reingold(
            weights=pairs["weight"].to_list() or None, seed=start, niter=300
        ).coords
        if len(ids) > 1
        else [(0.0, 0.0)] * len(ids)
    )
    return nodes.with_columns(
        pl.Series("x", [c[0] for c in coords], dtype=pl.Float64),
        pl.Series("y", [c[1] for c in coords], dtype=pl.Float64),
    )


LINK_MEANINGS = {name: edge.meaning for name, edge in EDGE_TYPES.items()}
LINK_COLOURS = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf",
    "#bcbd22", "#7f7f7f",
)  # fmt: skip


def link_graph(nodes: pl.DataFrame, edges: pl.DataFrame) -> alt.LayerChart:
    """Accounts as points coloured by their verdict, links as lines coloured by type. Every
    link type keeps its colour from campaign to campaign; the legend lists the types present,
    two to a row, so long names are never cut off the end of one row."""
    placed = layout(nodes, edges)
    where = placed.select("account_id", "x", "y")
    lines = (
        edges.join(where.rename({"account_id": "src"}), on="src")
        .join(where.rename({"account_id": "dst", "x": "x2", "y": "y2"}), on="dst")
        .with_columns(
            pl.col("edge_type")
            .replace_strict(LINK_MEANINGS, default=None)
            .fill_null(pl.col("edge_type"))
            .alias("link")
        )
    )
    domain = list(LINK_MEANINGS.values())
    domain += sorted(set(lines["link"].to_list()) - set(domain))
    present = [name for name in domain if name in set(lines["link"].to_list())]
    colours = [LINK_COLOURS[i % len(LINK_COLOURS)] for i in range(len(domain))]
    axis = alt.Axis(labels=False, ticks=False, title=None, grid=False, domain=False)
    edge_layer = (
        alt.Chart(lines.to_pandas())
        .mark_rule(opacity=0.5)
        .encode(
            x=alt.X("x:Q", axis=axis),
            y=alt.Y("y:Q", axis=axis),
            x2="x2:Q",
            y2="y2:Q",
            color=alt.Color(
                "link:N",
                title="link type",
                scale=alt.Scale(domain=domain, range=colours),
                legend=alt.Legend(orient="bottom", values=present, columns=2, labelLimit=0),
            ),
            tooltip=["src", "dst", "link", "evidence"],
        )
    )
    node_layer = (
        alt.Chart(placed.to_pandas())
        .mark_point(filled=True, size=90, stroke="white", strokeWidth=0.8)
        .encode(
            x="x:Q",
            y="y:Q",
            fill=alt.Fill(
                "verdict:N",
                title="verdict",
                scale=alt.Scale(domain=list(VERDICT_COLOURS), range=list(VERDICT_COLOURS.values())),
                legend=alt.Legend(orient="right"),
            ),
            shape=alt.Shape("flagged:N"),
            tooltip=["account_id", alt.Tooltip("score:Q", format=".3f"), "verdict"],
        )
    )
    return (
        alt.layer(edge_layer, node_layer)
        .resolve_scale(color="independent")
        .properties(height=460)
        .configure_view(strokeWidth=0)
    )


def heatmap(hours: pl.DataFrame) -> alt.Chart:
    """Requests per member per hour: synchronised timing shows as vertical stripes. Each cell
    spans its hour (`x` to `x2`): a rect with only `x` on a time axis stretches across the
    whole chart, and each member's row came out one colour."""
    cells = hours.with_columns((pl.col("hour") + pl.duration(hours=1)).alias("hour_end"))
    return (
        alt.Chart(cells.to_pandas())
        .mark_rect()
        .encode(
            x=alt.X("hour:T", title="hour (UTC)"),
            x2="hour_end:T",
            y=alt.Y("account_id:N", title=None, sort="-color"),
            color=alt.Color("n_requests:Q", title="requests", scale=alt.Scale(scheme="orangered")),
            tooltip=["account_id", "hour:T", "n_requests"],
        )
        .properties(height=max(120, 18 * hours["account_id"].n_unique()))
    )


def line(frame: pl.DataFrame, x: str, y: str | list[str], title: str = "") -> alt.Chart:
    """One or several series over `x`."""
    columns = [y] if isinstance(y, str) else y
    long = frame.unpivot(index=x, on=columns, variable_name="series", value_name="value")
    return (
        alt.Chart(long.to_pandas())
        .mark_line(point=True)
        .encode(
            x=alt.X(f"{x}:T", title=None, axis=alt.Axis(format="%b %d", tickCount="day")),
            y=alt.Y("value:Q", title=title),
            color=alt.Color("series:N", title=None, legend=alt.Legend(orient="bottom")),
            tooltip=[f"{x}:T", "series", alt.Tooltip("value:Q", format=".4g")],
        )
        .properties(height=240)
    )


def bars(frame: pl.DataFrame, x: str, y: str, title: str = "", daily: bool = False) -> alt.Chart:
    """Counts over time: one bar per day (`daily`, an ordinal axis) or per timestamp."""
    axis = (
        alt.X(f"yearmonthdate({x}):O", title=None, axis=alt.Axis(format="%b %d", labelAngle=0))
        if daily
        else alt.X(f"{x}:T", title=None)
    )
    return (
        alt.Chart(frame.to_pandas())
        .mark_bar()
        .encode(x=axis, y=alt.Y(f"{y}:Q", title=title), tooltip=[x, y])
        .properties(height=200)
    )


def histograms(frame: pl.DataFrame) -> alt.Chart:
    """Score distributions of some nights side by side (share of accounts per score bin)."""
    data = frame.with_columns(
        pl.col("run_date").cast(pl.String), (pl.col("bin") + 0.05).alias("bin_end")
    )
    return (
        alt.Chart(data.to_pandas())
        .mark_bar(opacity=0.6)
        .encode(
            x=alt.X("bin:Q", title="score", bin="binned", scale=alt.Scale(domain=[0, 1])),
            x2="bin_end:Q",
            y=alt.Y(
                "share:Q",
                title="share of accounts",
                stack=None,
                scale=alt.Scale(type="symlog", constant=0.001),
            ),
            color=alt.Color("run_date:N", title="night"),
            tooltip=["run_date", "bin", alt.Tooltip("share:Q", format=".2%")],
        )
        .properties(height=240)
    )
