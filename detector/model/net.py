"""The detector network: account encoder, typed message passing, campaign pooling.

Pure module, no training logic. An account is first encoded from its own features; each
message-passing layer then mixes in the mean of its neighbours' states, one learned transform
per link type (shared payment means something else than similar behaviour); finally every
account sees its cluster's pooled state (mean and max over members), and a second head scores
each cluster as a campaign from the same pooled state. Beside them, small per-view heads
(`detector.model.views`) read only their view's inputs; a flag needs them all. Sparse matrix
products run in float32 even under autocast, so mixed precision on a GPU never meets an
unsupported sparse kernel.
"""

from __future__ import annotations

import torch
from torch import nn

from detector.model.config import ModelConfig
from detector.model.graph import TorchGraph
from detector.model.views import ViewHeads


class TypedConv(nn.Module):
    """h + dropout(GELU(LayerNorm(W_self h + sum_t W_t (A_t h)))), A_t row-normalised."""

    def __init__(self, hidden: int, n_types: int, dropout: float) -> None:
        super().__init__()
        self.self_linear = nn.Linear(hidden, hidden)
        self.type_linear = nn.ModuleList(
            nn.Linear(hidden, hidden, bias=False) for _ in range(n_types)
        )
        self.norm = nn.LayerNorm(hidden)
        self.dropout = nn.Dropout(dropout)

    def forward(self, h: torch.Tensor, adjacency: list[torch.Tensor | None]) -> torch.Tensor:
        out = self.self_linear(h)
        with torch.autocast(device_type=h.device.type, enabled=False):
            hf = h.float()
            messages = [None if a is None else torch.sparse.mm(a, hf) for a in adjacency]
        for linear, m in zip(self.type_linear, messages, strict=True):
            if m is not None:
                out = out + linear(m.to(out.dtype))
        return h + self.dropout(nn.functional.gelu(self.norm(out)))


class DetectorNet(nn.Module):
    """Account and campaign logits for one graph."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        n_features, n_types = config.n_features, config.n_types
        hidden, layers, dropout = config.hidden, config.layers, config.dropout
        self.encoder = nn.Sequential(
            nn.Linear(n_features, hidden),
            nn.LayerNorm(hidden),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.GELU(),
        )
        self.convs = nn.ModuleList(TypedConv(hidden, n_types, dropout) for _ in range(layers))
        self.account_head = nn.Sequential(
            nn.Linear(3 * hidden + 1, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, 1)
        )
        self.campaign_head = nn.Sequential(
            nn.Linear(2 * hidden + 1, hidden), nn.GELU(), nn.Linear(hidden, 1)
        )
        self.views = ViewHeads(config.views)

    def forward(
        self, g: TorchGraph, adjacency: list[torch.Tensor | None] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(account logits [n], campaign logits [n_clusters]); `adjacency` overrides g's."""
        adjacency = g.adjacency if adjacency is None else adjacency
        h = self.encoder(g.x)
        for conv in self.convs:
            h = conv(h, adjacency)
        pooled, size = pool(h, g.cluster, g.n_slots)
        per_account = pooled[g.cluster]
        log_size = torch.log(size[g.cluster]).unsqueeze(1).to(h.dtype)
        account = self.account_head(torch.cat([h, per_account, log_size], dim=1)).squeeze(1)
        clusters = torch.cat([pooled, torch.log(size).unsqueeze(1).to(h.dtype)], dim=1)
        campaign = self.campaign_head(clusters[: g.n_clusters]).squeeze(1)
        return account, campaign


def pool(h: torch.Tensor, cluster: torch.Tensor, n_slots: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and max of member states per cluster slot ([slots, 2h]) and member counts."""
    index = cluster.unsqueeze(1).expand_as(h)
    zeros = torch.zeros(n_slots, h.shape[1], dtype=h.dtype, device=h.device)
    mean = zeros.scatter_reduce(0, index, h, reduce="mean", include_self=False)
    top = zeros.scatter_reduce(0, index, h, reduce="amax", include_self=False)
    size = torch.bincount(cluster, minlength=n_slots).clamp(min=1).float()
    return torch.cat([mean, top], dim=1), size
