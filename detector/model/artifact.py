"""Model directories: what `train` writes and `score --model` reads.

    DIR/model.pt     the network's weights (torch state dict, loaded with weights_only=True)
    DIR/model.json   architecture, preprocessing, calibration, thresholds, feature set,
                     training data and validation figures

The default model ships inside the package (`detector/model/default/`).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import torch

from detector.model.graph import LINK_TYPES, Preprocessor
from detector.model.net import DetectorNet
from detector.model.train import Fitted, Platt, TrainConfig
from features.registry import FEATURE_SET

FORMAT = "distillguard-model-1"
DEFAULT = Path(__file__).parent / "default"


class ModelError(ValueError):
    """A model directory that cannot be used, with the reason."""


def save(fitted: Fitted, folder: Path, trained_on: dict) -> None:
    """Write a model directory (overwrites its two files)."""
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(fitted.net.state_dict(), folder / "model.pt")
    meta = {
        "format": FORMAT,
        "feature_set": FEATURE_SET,
        "link_types": list(LINK_TYPES),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": asdict(fitted.config),
        "n_inputs": fitted.net.encoder[0].in_features,
        "preprocessor": fitted.prep.to_dict(),
        "account_calibration": asdict(fitted.account_calibration),
        "campaign_calibration": asdict(fitted.campaign_calibration),
        "threshold": fitted.threshold,
        "campaign_threshold": fitted.campaign_threshold,
        "validation": fitted.validation,
        "history": fitted.history,
        "trained_on": trained_on,
    }
    (folder / "model.json").write_text(json.dumps(meta, indent=1, default=str))


def load(folder: Path | None = None) -> tuple[Fitted, dict]:
    """A model directory (the shipped default when None) and its metadata."""
    folder = DEFAULT if folder is None else folder
    meta_path, weights = folder / "model.json", folder / "model.pt"
    if not meta_path.is_file() or not weights.is_file():
        raise ModelError(f"{folder}: not a model directory (needs model.json and model.pt)")
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as exc:
        raise ModelError(f"{meta_path}: not valid JSON ({exc})") from exc
    if meta.get("format") != FORMAT:
        raise ModelError(f"{meta_path}: format {meta.get('format')!r}, expected {FORMAT!r}")
    if meta["feature_set"] != FEATURE_SET:
        raise ModelError(
            f"{folder}: trained on feature set {meta['feature_set']}, this version computes "
            f"{FEATURE_SET}; retrain with `distillguard train`"
        )
    if meta["link_types"] != list(LINK_TYPES):
        raise ModelError(f"{folder}: trained on link types {meta['link_types']}; retrain it")
    cfg = TrainConfig(**meta["config"])
    net = DetectorNet(meta["n_inputs"], len(LINK_TYPES), cfg.hidden, cfg.layers, cfg.dropout)
    net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    net.eval()
    fitted = Fitted(
        net=net,
        prep=Preprocessor.from_dict(meta["preprocessor"]),
        config=cfg,
        account_calibration=Platt(**meta["account_calibration"]),
        campaign_calibration=Platt(**meta["campaign_calibration"]),
        threshold=meta["threshold"],
        campaign_threshold=meta["campaign_threshold"],
        history=meta.get("history", []),
        validation=meta.get("validation", {}),
    )
    return fitted, meta
