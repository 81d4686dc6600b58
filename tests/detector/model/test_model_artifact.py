"""Model directories: what `load` accepts, what it refuses and how it says why."""

from __future__ import annotations

import json
import logging
import shutil

import numpy as np
import pytest
import torch

from detector.model import artifact
from detector.model.config import Augmentation, ModelConfig, Optimiser, TrainConfig
from features.version import FEATURE_SET


@pytest.fixture
def copy(tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(artifact.DEFAULT, folder)
    return folder


def _edit(folder, **changes):
    meta = json.loads((folder / "model.json").read_text())
    meta.update(changes)
    (folder / "model.json").write_text(json.dumps(meta))
    return meta


def test_shipped_model_carries_code_version_and_feature_hash():
    _, meta = artifact.load()
    assert meta["format"] == artifact.FORMAT
    assert meta["feature_set"] == FEATURE_SET
    assert FEATURE_SET.endswith(meta["feature_hash"])
    assert meta["code_version"] == artifact.code_version()
    assert ModelConfig(**meta["model"]).n_types == len(meta["link_types"])


def test_other_feature_definitions_are_refused_naming_both_versions(copy):
    _edit(copy, feature_set="account-000000000000", code_version="0.0.1")
    with pytest.raises(artifact.ModelError, match="account-000000000000") as err:
        artifact.load(copy)
    assert FEATURE_SET in str(err.value) and "0.0.1" in str(err.value)
    assert "retrain" in str(err.value)


def _without_views(folder) -> dict:
    """Make the copy a model trained before view heads: no view weights or thresholds."""
    weights = torch.load(folder / "model.pt", weights_only=True)
    bare = {k: v for k, v in weights.items() if not k.startswith("views.")}
    assert len(bare) < len(weights)
    torch.save(bare, folder / "model.pt")
    meta = json.loads((folder / "model.json").read_text())
    meta.pop("view_thresholds")
    meta["model"]["views"] = []
    return meta


def test_format_1_flat_config_still_loads(copy):
    meta = _without_views(copy)
    cfg = meta.pop("config")
    flat = {k: v for k, v in cfg.items() if not isinstance(v, dict)}
    flat |= cfg["optimiser"] | cfg["augmentation"]
    shape = meta.pop("model")
    meta |= {"format": "distillguard-model-1", "config": flat, "n_inputs": shape["n_features"]}
    (copy / "model.json").write_text(json.dumps(meta))
    fitted, _ = artifact.load(copy)
    shipped, _ = artifact.load()
    assert fitted.config == shipped.config and fitted.view_thresholds == ()
    ours = shipped.net.state_dict()
    for name, tensor in fitted.net.state_dict().items():
        assert torch.equal(tensor, ours[name])


def test_format_2_without_view_heads_loads_and_flags_on_the_network_alone(copy):
    meta = _without_views(copy)
    meta["format"] = "distillguard-model-2"
    (copy / "model.json").write_text(json.dumps(meta))
    fitted, _ = artifact.load(copy)
    assert fitted.view_thresholds == () and fitted.net.config.views == ()
    assert fitted.corroborated(np.zeros((3, 0))).all(axis=1).all()  # no view vetoes


def test_an_abstaining_view_round_trips_as_null(copy, tmp_path):
    meta = json.loads((copy / "model.json").read_text())
    n = len(meta["model"]["views"])
    _edit(copy, view_thresholds=[None, *[0.5] * (n - 1)])
    fitted, _ = artifact.load(copy)
    assert fitted.view_thresholds == (float("-inf"), *[0.5] * (n - 1))
    artifact.save(fitted, tmp_path / "again", {"source": "test"})
    again = json.loads((tmp_path / "again" / "model.json").read_text())
    assert again["view_thresholds"] == [None, *[0.5] * (n - 1)]


def test_view_thresholds_must_match_the_view_heads(copy):
    _edit(copy, view_thresholds=[0.5])
    with pytest.raises(artifact.ModelError, match="view heads but 1 view thresholds"):
        artifact.load(copy)


def test_weights_that_do_not_fit_are_refused_with_a_reason(copy):
    meta = json.loads((copy / "model.json").read_text())
    _edit(copy, model=meta["model"] | {"hidden": 32})
    with pytest.raises(artifact.ModelError, match="weights do not fit"):
        artifact.load(copy)


def test_config_round_trips_and_rejects_nonsense():
    cfg = TrainConfig(hidden=8, optimiser=Optimiser(lr=1e-2), augmentation=Augmentation(noise=0))
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="dropout"):
        ModelConfig(10, 8, dropout=1.5)
    with pytest.raises(ValueError, match="edge_dropout"):
        Augmentation(edge_dropout=1.0)
    with pytest.raises(ValueError, match="n_features"):
        ModelConfig(0, 8)
    # views come back from JSON as lists; a view must read columns the matrix has
    assert ModelConfig(10, 8, views=[["content", [0, 1]]]).views == (("content", (0, 1)),)
    with pytest.raises(ValueError, match="view 'usage' needs columns"):
        ModelConfig(10, 8, views=[["usage", [3, 10]]])
    with pytest.raises(ValueError, match="view_budget"):
        TrainConfig(view_budget=0)
    assert TrainConfig(views=False).model(10, 8, (("content", (0,)),)).views == ()


def test_model_inputs_missing_from_a_table_are_warned(caplog):
    import polars as pl

    fitted, _ = artifact.load()
    frame = pl.DataFrame({"account_id": ["a"], "n_requests": [3]})
    with caplog.at_level(logging.WARNING, logger="detector.model.graph"):
        x = fitted.prep.transform(frame)
    assert x.shape == (1, len(fitted.prep.columns))
    assert any("missing from the feature table" in r.message for r in caplog.records)
