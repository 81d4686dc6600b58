"""The detector's settings, as frozen dataclasses the CLI fills: the architecture (`ModelConfig`)
apart from how it is trained (`TrainConfig`: optimiser, augmentation, operating point, device).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of `DetectorNet`. `n_features` and `n_types` come from the data (the
    preprocessor's matrix width and the link types), as do `views`: (view, matrix columns) of
    the per-view heads (`detector.model.views`; empty in models trained before them, which
    then have no view gate); the rest are hyper-parameters."""

    n_features: int
    n_types: int
    hidden: int = 64
    layers: int = 2
    dropout: float = 0.1
    views: tuple[tuple[str, tuple[int, ...]], ...] = ()

    def __post_init__(self) -> None:
        # from JSON the views come back as lists: make them the tuples a frozen config holds
        views = tuple((str(name), tuple(int(c) for c in cols)) for name, cols in self.views)
        object.__setattr__(self, "views", views)
        for name, cols in views:
            if not cols or min(cols) < 0 or max(cols) >= self.n_features:
                raise ValueError(f"view {name!r} needs columns in [0, {self.n_features}): {cols}")
        for name in ("n_features", "n_types", "hidden", "layers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


@dataclass(frozen=True)
class Optimiser:
    """AdamW and early stopping: at most `max_epochs`, stop after `patience` without progress."""

    lr: float = 3e-3
    weight_decay: float = 1e-4
    max_epochs: int = 100
    patience: int = 20
    seed: int = 0

    def __post_init__(self) -> None:
        if self.max_epochs < 1 or self.patience < 1:
            raise ValueError(
                f"max_epochs and patience must be at least 1, got {self.max_epochs}, "
                f"{self.patience}"
            )
        if self.lr <= 0:
            raise ValueError(f"lr must be positive, got {self.lr}")


@dataclass(frozen=True)
class Augmentation:
    """Regularisers that push the model onto many weak signals (see `detector.model.train`):
    whole link types dropped for a step, whole feature families reset to the legitimate median,
    Gaussian noise on every standardised input."""

    edge_dropout: float = 0.2
    family_dropout: float = 0.15
    noise: float = 0.05

    def __post_init__(self) -> None:
        for name in ("edge_dropout", "family_dropout"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if self.noise < 0:
            raise ValueError(f"noise must not be negative, got {self.noise}")


@dataclass(frozen=True)
class TrainConfig:
    """How a model is trained and where it operates.

    `hidden`, `layers` and `dropout` size the network (the rest of its `ModelConfig` comes from
    the data); `fpr_budget` is the share of legitimate validation accounts the threshold may
    flag; `views` adds the per-view heads whose agreement a flag needs
    (`detector.model.views`), trained with loss weight `view_weight`, each view's threshold
    letting `view_budget` of legitimate validation accounts through; `device` None picks CUDA,
    then MPS, then the CPU.
    """

    hidden: int = 64
    layers: int = 2
    dropout: float = 0.1
    optimiser: Optimiser = field(default_factory=Optimiser)
    augmentation: Augmentation = field(default_factory=Augmentation)
    campaign_weight: float = 0.5
    fpr_budget: float = 0.001
    views: bool = True
    view_weight: float = 0.5
    view_budget: float = 0.05
    device: str | None = None

    def __post_init__(self) -> None:
        if not 0 < self.fpr_budget < 1:
            raise ValueError(f"fpr_budget must be in (0, 1), got {self.fpr_budget}")
        if self.campaign_weight < 0:
            raise ValueError(f"campaign_weight must not be negative, got {self.campaign_weight}")
        if self.view_weight < 0:
            raise ValueError(f"view_weight must not be negative, got {self.view_weight}")
        if not 0 < self.view_budget < 1:
            raise ValueError(f"view_budget must be in (0, 1), got {self.view_budget}")

    def model(self, n_features: int, n_types: int, views=()) -> ModelConfig:
        """The architecture for data of `n_features` inputs and `n_types` link types; `views`
        (view, columns) are kept only when this config asks for view heads."""
        views = views if self.views else ()
        return ModelConfig(n_features, n_types, self.hidden, self.layers, self.dropout, views)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        """From `to_dict`'s output, or from the flat dict of model format 1 (all keys at the
        top level), so models trained before the split still load."""
        nested = {"optimiser": Optimiser, "augmentation": Augmentation}
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known and k not in nested}
        for name, kind in nested.items():
            own = {f.name for f in fields(kind)}
            part = data.get(name) or {k: v for k, v in data.items() if k in own}
            kwargs[name] = kind(**part)
        return cls(**kwargs)
