"""Training loop for `DetectorNet`: seeded, device-aware, early-stopped, calibrated.

Early stopping keeps the epoch with the best validation average precision (to 4 decimals),
breaking ties by a validation log-loss at least 1% lower, and stops after `patience` epochs
without either.

Generalisation matters more than fit: the model will meet traffic its simulator never wrote.
Three regularisers push it to use many weak signals instead of one strong simulator artefact:
whole link types are dropped at random for a step (a provider may have no payment data),
whole feature families are reset to the legitimate median (logs without thinking fields or IPs),
and small Gaussian noise is added to every input.

Scores are calibrated with Platt scaling on validation logits, and the operating threshold is the
score that keeps the share of legitimate validation accounts flagged within the false-positive
budget (default 0.1%).
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score

from detector.model.config import Augmentation, TrainConfig
from detector.model.graph import Graph, Preprocessor, TorchGraph
from detector.model.net import DetectorNet
from detector.model.views import view_columns

log = logging.getLogger(__name__)


@dataclass
class Platt:
    """p = sigmoid(a * logit + b), fitted on validation."""

    a: float = 1.0
    b: float = 0.0

    @classmethod
    def fit(cls, logits: np.ndarray, y: np.ndarray) -> Platt:
        if len(np.unique(y)) < 2:
            log.warning(
                "calibration: validation has only one class (%d accounts); scores are the "
                "uncalibrated sigmoid of the logits",
                len(y),
            )
            return cls()
        lr = LogisticRegression(C=100.0).fit(logits.reshape(-1, 1), y)
        return cls(float(lr.coef_[0, 0]), float(lr.intercept_[0]))

    def __call__(self, logits: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(self.a * np.asarray(logits, np.float64) + self.b)))


@dataclass
class Fitted:
    """A trained network with everything needed to score and explain."""

    net: DetectorNet
    prep: Preprocessor
    config: TrainConfig
    account_calibration: Platt
    campaign_calibration: Platt
    threshold: float
    campaign_threshold: float
    history: list[dict] = field(default_factory=list)
    validation: dict = field(default_factory=dict)
    view_thresholds: tuple[float, ...] = ()  # per view head, on its logits (empty: no gate)

    def corroborated(self, view_logits: np.ndarray) -> np.ndarray:
        """Per account and view, whether the view finds it suspicious ([n, views] bool)."""
        return view_logits > np.asarray(self.view_thresholds, dtype=float)


def pick_device(requested: str | None = None) -> torch.device:
    """`requested`, else CUDA, then Apple MPS, then the CPU."""
    if requested:
        return torch.device(requested)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)  # noqa: NPY002 - libraries below us read the global state


def threshold_for(scores_legit: np.ndarray, budget: float) -> float:
    """The smallest threshold t with share(score > t) <= budget among legitimate scores."""
    if scores_legit.size == 0:
        log.warning("threshold: no legitimate validation scores; falling back to 0.5")
        return 0.5
    allowed = int(np.floor(budget * scores_legit.size))
    ranked = np.sort(scores_legit)[::-1]
    return float(ranked[min(allowed, ranked.size - 1)])


def predict(net: DetectorNet, g: TorchGraph) -> tuple[np.ndarray, np.ndarray]:
    """Account and campaign logits (numpy, float64), no gradients."""
    net.eval()
    with torch.no_grad(), torch.autocast(g.x.device.type, enabled=g.x.device.type == "cuda"):
        account, campaign = net(g)
    return account.double().cpu().numpy(), campaign.double().cpu().numpy()


def predict_views(net: DetectorNet, g: TorchGraph) -> np.ndarray:
    """Per-view logits [n, views] (numpy, float64; no columns for a model without view heads)."""
    net.eval()
    with torch.no_grad():
        return net.views(g.x.float()).double().cpu().numpy()


def fit(
    train: list[Graph],
    val: list[Graph],
    prep: Preprocessor,
    cfg: TrainConfig = TrainConfig(),
    progress: Callable[[int, dict], None] | None = None,
) -> Fitted:
    """Train on `train`, stop early on validation average precision, calibrate on `val`."""
    if not train or not val:
        raise ValueError("training needs at least one training and one validation graph")
    opt_cfg, aug = cfg.optimiser, cfg.augmentation
    seed_everything(opt_cfg.seed)
    device = pick_device(cfg.device)
    families = prep.families()
    shape = cfg.model(train[0].x.shape[1], len(train[0].adjacency), view_columns(families))
    net = DetectorNet(shape).to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=opt_cfg.lr, weight_decay=opt_cfg.weight_decay)
    tg = [g.tensors(device) for g in train]
    vg = [g.tensors(device) for g in val]
    ys = [torch.from_numpy(g.y).to(device) for g in train]
    cys = [torch.from_numpy(g.cluster_y).to(device) for g in train]
    masks = [tuple(torch.from_numpy(m).to(device) for m in g.masked()) for g in train]
    positives = sum(float(g.y[g.masked()[0]].sum()) for g in train)
    negatives = sum(float((1 - g.y[g.masked()[0]]).sum()) for g in train)
    if not positives or not negatives:
        raise ValueError("training needs both campaign (1) and legitimate (0) accounts")
    pos_weight = torch.tensor(min(negatives / max(positives, 1.0), 100.0), device=device)
    families = np.asarray(families)
    family_names = sorted(set(families))
    family_cols = {
        f: torch.from_numpy(np.flatnonzero(families == f)).to(device) for f in family_names
    }
    gen = torch.Generator().manual_seed(opt_cfg.seed)
    use_amp = device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)

    best, best_key, stale, history = None, (-1.0, float("inf")), 0, []
    for epoch in range(opt_cfg.max_epochs):
        started = time.perf_counter()
        net.train()
        order = torch.randperm(len(tg), generator=gen).tolist()
        total = 0.0
        for i in order:
            g, y, cy, (m, cm) = tg[i], ys[i], cys[i], masks[i]
            x = _augment(g.x, family_cols, aug, gen)
            adjacency = [
                None if torch.rand(1, generator=gen).item() < aug.edge_dropout else a
                for a in g.adjacency
            ]
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                account, campaign = net(
                    TorchGraph(x, g.adjacency, g.cluster, g.n_slots, g.n_clusters), adjacency
                )
            loss = nn_bce(account.float()[m], y[m], pos_weight)
            if cm.any() and cfg.campaign_weight:
                loss = loss + cfg.campaign_weight * nn_bce(campaign.float()[cm], cy[cm], pos_weight)
            if shape.views and cfg.view_weight:
                # clean inputs: family dropout spreads the network over many signals, but a
                # view has few families and must learn all of its own
                views = net.views(g.x)[m]
                loss = loss + cfg.view_weight * nn_bce(
                    views, y[m].unsqueeze(1).expand_as(views), pos_weight
                )
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            total += float(loss.detach())
        logits = np.concatenate(
            [predict(net, t)[0][g.masked()[0]] for t, g in zip(vg, val, strict=True)]
        )
        y_val = np.concatenate([g.y[g.masked()[0]] for g in val])
        ap = float(average_precision_score(y_val, logits)) if y_val.any() else 0.0
        val_loss = float(np.mean(np.logaddexp(0.0, np.where(y_val == 1, -logits, logits))))
        row = {
            "epoch": epoch,
            "loss": total / len(tg),
            "val_ap": ap,
            "val_loss": val_loss,
            "seconds": time.perf_counter() - started,
        }
        history.append(row)
        if progress is not None:
            progress(epoch, row)
        # AP first; once it stops moving (it saturates on easy data), lower validation loss
        ap_key = round(ap, 4)
        if ap_key > best_key[0] or (ap_key == best_key[0] and val_loss < 0.99 * best_key[1]):
            best, best_key, stale = copy.deepcopy(net.state_dict()), (ap_key, val_loss), 0
        else:
            stale += 1
            if stale >= opt_cfg.patience:
                break
    net.load_state_dict(best)
    return _calibrate(net, prep, cfg, vg, val, history)


def nn_bce(logits: torch.Tensor, y: torch.Tensor, pos_weight: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.binary_cross_entropy_with_logits(logits, y, pos_weight=pos_weight)


def _augment(
    x: torch.Tensor, family_cols: dict, aug: Augmentation, gen: torch.Generator
) -> torch.Tensor:
    out = x + aug.noise * torch.randn(x.shape, generator=gen).to(x.device)
    for cols in family_cols.values():
        if torch.rand(1, generator=gen).item() < aug.family_dropout:
            out[:, cols] = 0.0  # the legitimate median, after standardisation
    return out


VIEW_MIN_RECALL = 0.5
"""A view that finds fewer than this share of the validation campaign accounts suspicious at its
own threshold abstains (threshold -inf): it cannot tell the classes apart on this data (its
inputs are constant or missing), and a view that cannot see must not veto every flag."""


def _view_threshold(name: str, logits: np.ndarray, y: np.ndarray, budget: float) -> float:
    threshold = threshold_for(logits[y == 0], budget)
    recall = float((logits[y == 1] > threshold).mean()) if y.any() else 0.0
    if recall < VIEW_MIN_RECALL:
        log.warning(
            "view %r finds %.0f%% of validation campaign accounts suspicious at its threshold: "
            "it abstains from the flag gate",
            name,
            100 * recall,
        )
        return float("-inf")
    return threshold


def _calibrate(
    net: DetectorNet,
    prep: Preprocessor,
    cfg: TrainConfig,
    vg: list[TorchGraph],
    val: list[Graph],
    history: list[dict],
) -> Fitted:
    outs = [predict(net, t) for t in vg]
    masks = [g.masked() for g in val]
    account = np.concatenate([o[0][m] for o, (m, _) in zip(outs, masks, strict=True)])
    y = np.concatenate([g.y[m] for g, (m, _) in zip(val, masks, strict=True)])
    campaign = np.concatenate([o[1][c] for o, (_, c) in zip(outs, masks, strict=True)])
    cy = np.concatenate([g.cluster_y[c] for g, (_, c) in zip(val, masks, strict=True)])
    acal, ccal = Platt.fit(account, y), Platt.fit(campaign, cy)
    scores, cscores = acal(account), ccal(campaign)
    threshold = threshold_for(scores[y == 0], cfg.fpr_budget)
    # a cluster with one flagged member is a campaign only if the campaign head is also at
    # least even odds on it, whatever the (few, easy) legitimate validation clusters allow
    campaign_threshold = max(threshold_for(cscores[cy == 0], max(cfg.fpr_budget, 0.01)), 0.5)
    flagged = scores > threshold
    held = np.zeros_like(flagged)
    view_thresholds: tuple[float, ...] = ()
    per_view: dict[str, float | None] = {}
    if net.config.views:  # a flag needs every view; the rest of the network's flags are held
        views = np.concatenate(
            [predict_views(net, t)[m] for t, (m, _) in zip(vg, masks, strict=True)]
        )
        view_thresholds = tuple(
            _view_threshold(name, views[:, v], y, cfg.view_budget)
            for v, (name, _) in enumerate(net.config.views)
        )
        fires = views > np.asarray(view_thresholds)
        held = flagged & ~fires.all(axis=1)
        flagged &= ~held
        per_view = {
            name: float(fires[y == 1, v].mean()) if y.any() else None
            for v, (name, _) in enumerate(net.config.views)
        }
    validation = {
        "accounts": int(y.size),
        "positives": int(y.sum()),
        "average_precision": float(average_precision_score(y, scores)) if y.any() else None,
        "recall_at_threshold": float(flagged[y == 1].mean()) if y.any() else None,
        "fpr_at_threshold": float(flagged[y == 0].mean()) if (y == 0).any() else None,
        "flagged_share": float(flagged.mean()) if y.size else None,
        "review_share": float(held.mean()) if y.size else None,
        "recall_held": float(held[y == 1].mean()) if y.any() else None,
        "view_recall": per_view,
        "config": cfg.to_dict(),
    }
    return Fitted(
        net.cpu(),
        prep,
        cfg,
        acal,
        ccal,
        threshold,
        campaign_threshold,
        history,
        validation,
        view_thresholds,
    )
