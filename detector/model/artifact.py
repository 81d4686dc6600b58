"""Model directories: what `train` writes and `score --model` reads.

    DIR/model.pt     the network's weights (torch state dict, loaded with weights_only=True)
    DIR/model.json   architecture (with the per-view heads' columns), training config,
                     preprocessing, calibration, thresholds (the account's, the campaign
                     head's, one per view), feature set and its definition hash, code version,
                     training data and validation figures

The default model ships inside the package (`detector/model/default/`). A model is refused when
its feature set differs from the one this code computes (`features.version`): its inputs would
mean something else.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import torch

from detector.model.config import ModelConfig, TrainConfig
from detector.model.graph import LINK_TYPES, Preprocessor
from detector.model.net import DetectorNet
from detector.model.train import Fitted, Platt
from features.version import FEATURE_HASH, FEATURE_SET

FORMAT = "distillguard-model-3"
READABLE = ("distillguard-model-1", "distillguard-model-2", FORMAT)
"""Formats `load` reads: format 1 kept the training config flat, format 2 had no view heads
(both still read; a model without view heads flags on the network alone)."""
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
        "feature_hash": FEATURE_HASH,
        "code_version": code_version(),
        "link_types": list(LINK_TYPES),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": asdict(fitted.net.config),
        "config": fitted.config.to_dict(),
        "preprocessor": fitted.prep.to_dict(),
        "account_calibration": asdict(fitted.account_calibration),
        "campaign_calibration": asdict(fitted.campaign_calibration),
        "threshold": fitted.threshold,
        "campaign_threshold": fitted.campaign_threshold,
        # an abstaining view's threshold is -inf, written as null (JSON has no infinities)
        "view_thresholds": [None if t == float("-inf") else t for t in fitted.view_thresholds],
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
    if meta.get("format") not in READABLE:
        raise ModelError(f"{meta_path}: format {meta.get('format')!r}, expected {FORMAT!r}")
    if meta.get("feature_set") != FEATURE_SET:
        raise ModelError(
            f"{folder}: trained on feature set {meta.get('feature_set')!r} (code "
            f"{meta.get('code_version', 'unknown')}), this version computes {FEATURE_SET} (code "
            f"{code_version()}): the feature definitions differ, so its inputs would mean "
            "something else; retrain with `distillguard train`"
        )
    if meta["link_types"] != list(LINK_TYPES):
        raise ModelError(f"{folder}: trained on link types {meta['link_types']}; retrain it")
    cfg = TrainConfig.from_dict(meta["config"])
    shape = meta.get("model") or asdict(cfg.model(meta["n_inputs"], len(LINK_TYPES)))
    net = DetectorNet(ModelConfig(**shape))
    try:
        net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    except (RuntimeError, OSError) as exc:  # torch says which tensors do not fit
        raise ModelError(f"{weights}: weights do not fit the model in model.json ({exc})") from exc
    net.eval()
    view_thresholds = tuple(
        float("-inf") if t is None else float(t) for t in meta.get("view_thresholds", ())
    )
    if len(view_thresholds) != len(net.config.views):
        raise ModelError(
            f"{meta_path}: {len(net.config.views)} view heads but {len(view_thresholds)} view "
            "thresholds"
        )
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
        view_thresholds=view_thresholds,
    )
    return fitted, meta


def code_version() -> str:
    """The installed distillguard package's version ('unknown' when not installed)."""
    try:
        return metadata.version("distillguard")
    except metadata.PackageNotFoundError:
        return "unknown"
