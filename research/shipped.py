"""Train the model that ships in the package (`detector/model/default/`).

    python -m research.shipped [--cache data/cache] [--out detector/model/default]

Trains on the simulator's training pool (`experiments.TRAIN`: every campaign type and evasion
tactic, benign-heavy and campaign-free worlds, logs with missing columns) and calibrates on the
validation pool. Seeded: the same code and pools give the same model on the same device type.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

from detector.model import artifact
from detector.model.config import TrainConfig
from detector.model.graph import extended, fit_preprocessor, make_graph
from detector.model.train import Fitted, fit, pick_device
from research import experiments
from research.worlds import WorldSpec, build_all


def train_pools(
    train: list[WorldSpec],
    val: list[WorldSpec],
    cache: Path | None,
    config: TrainConfig = TrainConfig(),
    console: Console | None = None,
) -> tuple[Fitted, dict]:
    """Build (or load) the worlds, then train and calibrate; the model and its provenance."""
    console = console or Console(stderr=True)
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("simulate + featurise worlds", total=len(train) + len(val))
        train_ex = build_all(train, cache, lambda s: progress.advance(task))
        val_ex = build_all(val, cache, lambda s: progress.advance(task))
        frames, val_frames = extended(train_ex), extended(val_ex)
        prep = fit_preprocessor(frames)
        graphs = [make_graph(f, ex.edges, prep) for f, ex in zip(frames, train_ex, strict=True)]
        val_graphs = [
            make_graph(f, ex.edges, prep) for f, ex in zip(val_frames, val_ex, strict=True)
        ]
        epochs = progress.add_task(
            "train (epochs, early stopping)", total=config.optimiser.max_epochs
        )
        started = time.perf_counter()
        fitted = fit(
            graphs,
            val_graphs,
            prep,
            config,
            lambda e, row: progress.update(
                epochs, completed=e + 1, description=f"train: val AP {row['val_ap']:.4f}"
            ),
        )
    info = {
        "source": "simulator",
        "train_worlds": [s.name for s in train],
        "validation_worlds": [s.name for s in val],
        "train_accounts": int(sum(len(g.ids) for g in graphs)),
        "train_positives": int(sum(g.y.sum() for g in graphs)),
        "device": str(pick_device(config.device)),
        "train_seconds": round(time.perf_counter() - started, 1),
    }
    return fitted, info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cache", type=Path, default=Path("data/cache"))
    parser.add_argument("--out", type=Path, default=artifact.DEFAULT)
    parser.add_argument("--device", default=None)
    args = parser.parse_args()
    fitted, info = train_pools(
        experiments.TRAIN, experiments.VALIDATION, args.cache, TrainConfig(device=args.device)
    )
    artifact.save(fitted, args.out, info)
    v = fitted.validation
    Console().print(
        f"Trained on {info['train_accounts']:,} account-windows on {info['device']} in "
        f"{info['train_seconds']} s ({len(fitted.history)} epochs); validation AP "
        f"{v['average_precision']:.4f}, recall {v['recall_at_threshold']:.1%} at FPR "
        f"{v['fpr_at_threshold']:.2%}; wrote {args.out}/"
    )


if __name__ == "__main__":
    main()
