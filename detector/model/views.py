"""Three views of an account, and the rule that a model flag needs all three to agree.

A distillation campaign is suspicious in three independent ways at once: what it asks for
(harvesting reasoning, grades, rewrites), how it uses the API (volume, machine timing, tool
loops, new-model rush) and who it is (fresh accounts, shared payment or networks, templates and
timing shared with other accounts). Every legitimate look-alike we know of matches one or two
of these and is ordinary on the rest: a research team eliciting reasoning is a harvest by
content and usage but an ordinary organisation by identity; an education platform's new,
card-sharing accounts look like a hydra by identity but ask homework questions in the evening.

The network sees all inputs at once and, trained on the archetypes we simulated, learns which
combinations are legitimate. Leave a legitimate archetype out of training and it flags that
archetype wholesale (BENCHMARKS.md, "Leave one legitimate archetype out"): a combination it
never saw is judged by the campaigns it resembles. So beside the network, `DetectorNet` carries
one small head per view, each reading only that view's inputs and trained on the same labels.
Each view gets its own threshold on validation (`TrainConfig.view_budget` of legitimate
accounts). An account the network flags is `flagged` only when every view also finds it
suspicious; otherwise it is held for review (`status = "review"`, `scoring`), with a reason
naming the view that finds it ordinary. A legitimate archetype the model never saw is then
flagged only if it is suspicious in every way a campaign is, and the analyst, not an alert,
sees the rest.
"""

from __future__ import annotations

import torch
from torch import nn

VIEWS: dict[str, frozenset[str]] = {
    "content": frozenset({"markers", "thinking", "diversity"}),
    "usage": frozenset({"volume", "timing", "agentic", "errors", "models"}),
    "identity": frozenset({"infrastructure", "metadata", "graph"}),
}
"""Each view's feature families (`detector.model.graph.FAMILY`); together they cover them all."""
MEANING = {
    "content": "what it asks (markers, thinking, templating)",
    "usage": "how it uses the API (volume, timing, tools, errors, model adoption)",
    "identity": "who it is and who it is linked to (infrastructure, sign-up, links)",
}


def view_columns(families: list[str]) -> tuple[tuple[str, tuple[int, ...]], ...]:
    """(view, matrix columns) for a preprocessor's column families; a family in no view is an
    error (a new family must be given a view before a model can use it)."""
    orphans = sorted(set(families) - set().union(*VIEWS.values()))
    if orphans:
        raise ValueError(f"feature families in no view: {orphans}; add them to views.VIEWS")
    return tuple(
        (view, tuple(i for i, f in enumerate(families) if f in fams))
        for view, fams in VIEWS.items()
    )


class ViewHeads(nn.Module):
    """One small MLP per view on that view's columns of the input matrix: logits [n, views]."""

    def __init__(self, views: tuple[tuple[str, tuple[int, ...]], ...], hidden: int = 32) -> None:
        super().__init__()
        for i, (_, cols) in enumerate(views):
            self.register_buffer(
                f"cols_{i}", torch.tensor(cols, dtype=torch.long), persistent=False
            )
        self.heads = nn.ModuleList(
            nn.Sequential(nn.Linear(len(cols), hidden), nn.GELU(), nn.Linear(hidden, 1))
            for _, cols in views
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.heads:
            return x.new_zeros((x.shape[0], 0))
        return torch.cat(
            [head(x[:, getattr(self, f"cols_{i}")]) for i, head in enumerate(self.heads)], dim=1
        )


def disagreement(fires: list[bool], names: list[str], abstains: list[bool]) -> str:
    """The review reason for an account the network flags but some view finds ordinary (an
    abstaining view is named neither way)."""
    seen = [(n, f) for n, f, a in zip(names, fires, abstains, strict=True) if not a]
    yes = [n for n, f in seen if f]
    no = ", ".join(MEANING.get(n, n) for n, f in seen if not f)
    also = f" (suspicious on {', '.join(yes)})" if yes else ""
    return f"held for review, not corroborated: ordinary on {no}{also}"
