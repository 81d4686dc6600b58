"""How the view gate's budget trades unseen look-alikes against unseen campaigns.

    python -m research.view_budget research_lab agentic_capability [--budgets 0.02 0.05]

For each named legitimate archetype or campaign type: leave it out of the training and
validation pools, train the three view heads alone (`detector.model.views`, the same small MLPs
as the model's, full batch, no network), set each view's threshold on validation at each budget
and report, in the held-out test worlds, the share of the left-out type on which all three
views agree (for an archetype, the most the gate lets through; for a campaign, the most it can
flag), with the same shares for every legitimate and every campaign account. Minutes on a CPU:
it isolates the gate's choice from the network's training (BENCHMARKS.md, "A flag needs every
view").
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import polars as pl
import torch
from rich.console import Console

from detector.model.train import nn_bce, threshold_for
from detector.model.views import ViewHeads, view_columns
from detector.simulate import CAMPAIGNS
from research import evaluate, experiments
from research.worlds import build_all


def agreement(
    train: list, val: list, test: list, budgets: list[float], epochs: int = 300
) -> tuple[pl.DataFrame, dict[float, np.ndarray]]:
    """The test accounts (label, campaign, archetype) and, per budget, whether all three view
    heads find each suspicious."""
    prep, tw = evaluate.windows_of(train)
    _, vw = evaluate.windows_of(val, prep)
    _, sw = evaluate.windows_of(test, prep)
    stack = lambda ws: torch.tensor(np.vstack([w.graph.x for w in ws]))  # noqa: E731
    x, xv, xs = stack(tw), stack(vw), stack(sw)
    y = torch.tensor(np.concatenate([w.y for w in tw]), dtype=torch.float32)
    yv = np.concatenate([w.y for w in vw])
    torch.manual_seed(0)
    heads = ViewHeads(view_columns(prep.families()))
    opt = torch.optim.AdamW(heads.parameters(), lr=1e-2, weight_decay=1e-4)
    pos_weight = torch.tensor(min(float((1 - y).sum() / y.sum()), 100.0))
    for _ in range(epochs):
        opt.zero_grad()
        logits = heads(x)
        loss = nn_bce(logits, y.unsqueeze(1).expand_as(logits), pos_weight)
        loss.backward()
        opt.step()
    with torch.no_grad():
        val_logits, test_logits = heads(xv).numpy(), heads(xs).numpy()
    out = {}
    for budget in budgets:
        t = [threshold_for(val_logits[yv == 0, v], budget) for v in range(val_logits.shape[1])]
        out[budget] = (test_logits > np.asarray(t)).all(axis=1)
    frame = pl.concat([w.frame.select("label", "campaign", "archetype") for w in sw])
    return frame, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("left_out", nargs="+", help="legitimate archetypes or campaign types")
    parser.add_argument("--budgets", nargs="+", type=float, default=[0.02, 0.05])
    parser.add_argument("--cache", type=Path, default=Path("data/cache"))
    args = parser.parse_args()
    console = Console()
    pools = [build_all(s, args.cache) for s in (experiments.TRAIN, experiments.VALIDATION)]
    test = build_all(experiments.TEST, args.cache)
    rows = []
    for name in args.left_out:
        column = "campaign" if name in CAMPAIGNS else "archetype"
        train, val = (evaluate.drop_where(p, column, name) for p in pools)
        frame, agreed = agreement(train, val, test, args.budgets)
        for budget, agree in agreed.items():
            shares = frame.with_columns(pl.Series("agree", agree)).select(
                pl.col("agree").filter(pl.col(column) == name).mean().alias("left_out_agreed"),
                pl.col("agree").filter(pl.col("label") == 0).mean().alias("legitimate_agreed"),
                pl.col("agree").filter(pl.col("label") == 1).mean().alias("campaigns_agreed"),
            )
            rows.append({"left_out": name, "budget": budget} | shares.row(0, named=True))
            console.log(rows[-1])
    with pl.Config(tbl_rows=100, float_precision=4):
        console.print(pl.DataFrame(rows))


if __name__ == "__main__":
    main()
