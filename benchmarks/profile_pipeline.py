"""The pipeline step by step at one size, this tree beside a baseline commit, in one run.

    python -m benchmarks.profile_pipeline --rows 10000000 [--days 1] [--baseline 1f054f2]
        [--per-account-day 64]

Simulated requests (canonical Parquet, one file per million rows, `--days` days) are written
once; then every contender runs as a command in a fresh process (wall time, peak RSS):

- the bare DuckDB scan of the request files (the floor: decode the columns, one group-by);
- `ingest` into an empty store;
- `features` over the whole span, cold (signals computed) and with the signals cached;
- `score --requests FILES` end to end (private store, features, links, model, reasons);
- this tree only: `score --store STORE` with the signals cached by `features` (no re-ingest).

The baseline runs from a git worktree of `--baseline` (the commit before the speed work by
default) on the same files; its cold features use a store of its own so neither reads the
other's signal cache. The two feature tables are compared: equal tables mean every figure
downstream (markers, detection) is unchanged. Stage breakdowns come from `--profile-out`;
signals by kind are single-thread CPU seconds on one batch (`POLARS_MAX_THREADS=1`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.common import Measured, bare_scan, machine, measure

ROOT = Path(__file__).resolve().parents[1]
PER_FILE = 1_000_000
SIMULATOR_PER_ACCOUNT_DAY = 64  # requests an account sends a day, on average, in the simulator
BASELINE = "1f054f2"


def write_requests(
    rows: int, days: int, folder: Path, distinct: bool = False, per_account_day: int = 64
) -> None:
    """Request files of `rows` simulated requests over `days` days and an accounts file in
    `folder`. Each file is one world of about a million requests (worlds differ by seed).
    `distinct`: every prompt made unique (a request number appended), the worst case for
    computing text signals once per distinct prompt; the simulator repeats prompts often.
    `per_account_day`: requests an account sends a day on average (64 is the simulator's own
    volume; fewer makes more accounts for the same rows, through `SimConfig.volume_scale`)."""
    import polars as pl

    from detector.simulate import SimConfig, simulate

    folder.mkdir(parents=True, exist_ok=True)
    files, accounts, n, seed = [], [], 0, 0
    while n < rows:
        take = min(PER_FILE, rows - n)
        cfg = SimConfig(
            accounts=max(100, take // (per_account_day * days)),
            days=days,
            volume_scale=per_account_day / SIMULATOR_PER_ACCOUNT_DAY,
        )
        world = simulate(SimConfig(**{**cfg.__dict__, "seed": 2000 + seed}))
        requests = world.requests.head(take)
        if distinct:
            tag = pl.lit(f" (request {seed}-") + pl.int_range(pl.len()).cast(pl.String) + ")"
            requests = requests.with_columns(pl.col("prompt").fill_null("") + tag)
        files.append(folder / f"requests-{seed:02d}.parquet")
        requests.write_parquet(files[-1])
        accounts.append(world.accounts)
        n += requests.height
        seed += 1
        print(f"  wrote {files[-1].name}: {requests.height:,} requests", flush=True)
    accounts_file = folder / "accounts.parquet"
    pl.concat(accounts).unique("account_id", keep="last").write_parquet(accounts_file)


def baseline_tree(ref: str, folder: Path) -> Path:
    """A detached worktree of `ref` (reused when it is already there)."""
    if not (folder / "detector").is_dir():
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--force", "--detach", str(folder), ref],
            check=True,
            capture_output=True,
        )
    return folder


def cli(tree: Path, *args: str) -> tuple[list[str], dict]:
    """argv and environment that run `distillguard` from the code in `tree`."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return [sys.executable, "-m", "detector.cli", *args], env


def run(label: str, tree: Path, *args: str, cwd: Path | None = None) -> Measured:
    argv, env = cli(tree, *args)
    print(f"  {label} ...", end=" ", flush=True)
    done = measure(argv, env=env, cwd=cwd or tree)
    print(f"{done.seconds:.1f} s, peak {done.peak_rss_mb:,.0f} MB", flush=True)
    return done


def signals_by_kind(store: Path) -> list[tuple[str, float]]:
    """Single-thread seconds per kind of signal on the first 250k-row batch of the store."""
    code = """
import json, sys, time, glob
import polars as pl
from features import signals as S
from features.markers import FAMILIES
from features.pipeline import SIGNAL_INPUTS
f = sorted(glob.glob(sys.argv[1] + "/requests/dt=*/*.parquet"))[0]
frame = pl.read_parquet(f, columns=SIGNAL_INPUTS, n_rows=250_000)
out = []
def timed(name, fn):
    start = time.perf_counter(); result = fn(); out.append((name, time.perf_counter() - start))
    return result
distinct = timed("distinct prompts (unique)", lambda: frame.select(
    pl.col("prompt").fill_null("").unique()))
p = pl.col("prompt")
skel = timed("skeleton (mask, lower-case, whitespace)", lambda: distinct.with_columns(
    skel=S.skeleton(p), low=p.str.slice(0, S.MARKER_CHARS).str.to_lowercase()))
words = pl.col("skel").str.split(" ").list.head(S.MINHASH_WORDS).list.eval(
    pl.element().filter(~pl.element().is_in(S.NOT_WORDS)))
timed("words and MinHash (6 seeds)", lambda: skel.with_columns(words=words).select(
    [S._minhash(pl.col("words"), s).alias(str(s)) for s in S.MINHASH_SEEDS]))
timed("markers: phrases (Aho-Corasick, 6 families)", lambda: skel.select(
    [pl.col("low").str.contains_any(list(f.phrases), ascii_case_insensitive=True).alias(f.name)
     for f in FAMILIES]))
timed("markers: patterns (9 regexes)", lambda: skel.select(
    [pl.col("low").str.contains(q).alias(f"{f.name}{i}") for f in FAMILIES
     for i, q in enumerate(f.patterns)]))
timed("script (non-ASCII openings only)", lambda: S._script(distinct))
timed("whole batch: request_signals", lambda: S.request_signals(frame))
print(json.dumps({"rows": frame.height, "distinct": distinct.height, "kinds": out}))
"""
    env = {**os.environ, "POLARS_MAX_THREADS": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", code, str(store)], env=env, capture_output=True, text=True
    )
    if done.returncode:
        raise RuntimeError(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(rows: list[tuple], header: tuple[str, ...]) -> str:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=1)
    parser.add_argument("--baseline", default=BASELINE, help="commit to compare with")
    parser.add_argument("--no-baseline", action="store_true", help="this tree only")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument(
        "--per-account-day",
        type=int,
        default=SIMULATOR_PER_ACCOUNT_DAY,
        help="requests an account sends a day (fewer: more accounts for the same rows)",
    )
    parser.add_argument(
        "--distinct-prompts", action="store_true", help="make every prompt unique (worst case)"
    )
    args = parser.parse_args()
    root = Path(args.workdir or tempfile.mkdtemp(prefix="dg-profile-"))
    print(f"machine: {machine()}\nworkdir: {root}", flush=True)
    tag = "-distinct" if args.distinct_prompts else ""
    if args.per_account_day != SIMULATOR_PER_ACCOUNT_DAY:
        tag += f"-{args.per_account_day}a"
    data = root / f"requests-{args.rows}-{args.days}d{tag}"
    if not (data / "accounts.parquet").exists():
        write_requests(args.rows, args.days, data, args.distinct_prompts, args.per_account_day)
    files = sorted(str(f) for f in data.glob("requests-*.parquet"))
    accounts = str(data / "accounts.parquet")
    import polars as pl

    n = pl.scan_parquet(files).select(pl.len()).collect().item()
    end = pl.scan_parquet(files).select(pl.col("ts").max()).collect().item().date().isoformat()
    window = f"{args.days}d"
    trees = [("this tree", ROOT)]
    if not args.no_baseline:
        trees.insert(0, (f"baseline {args.baseline}", baseline_tree(args.baseline, root / "base")))
    results: list[tuple[str, str, Measured]] = []
    results.append(
        ("bare DuckDB scan (floor)", "", measure(bare_scan(f"{data}/requests-*.parquet")))
    )
    profiles: dict[str, dict] = {}
    for name, tree in trees:
        store, out = root / f"store-{tree.name}", root / f"out-{tree.name}"
        shutil.rmtree(store, ignore_errors=True)
        prof = root / f"ingest-{tree.name}.json"
        extra = ["--profile-out", str(prof)] if tree == ROOT else []
        m = run(f"{name}: ingest", tree, *extra, "ingest", *files, accounts, "--store", str(store))
        results.append(("ingest (canonical Parquet)", name, m))
        if tree == ROOT:
            profiles["ingest"] = json.loads(prof.read_text())
        feats = root / f"features-{tree.name}.parquet"
        argv = ["features", "--store", str(store), "--date", end, "--window", window]
        m = run(f"{name}: features cold", tree, *argv, "--out", str(feats))
        results.append(("features, cold", name, m))
        m = run(f"{name}: features cached", tree, *argv, "--out", str(feats))
        results.append(("features, signals cached", name, m))
        given = [arg for f in files for arg in ("--requests", f)]
        args_req = ["score", *given, "--accounts", accounts, "--out", str(out)]
        prof = root / f"score-requests-{tree.name}.json"
        extra = ["--profile-out", str(prof)] if tree == ROOT else []
        m = run(f"{name}: score --requests", tree, *extra, *args_req)
        results.append(("score --requests (end to end)", name, m))
        if tree == ROOT:
            profiles["score --requests"] = json.loads(prof.read_text())
            prof = root / "score-store.json"
            m = run(
                f"{name}: score --store",
                tree,
                "--profile-out",
                str(prof),
                *["score", "--store", str(store), "--out", str(out)],
            )
            results.append(("score --store (signals cached, no re-ingest)", name, m))
            profiles["score --store"] = json.loads(prof.read_text())
    bare = results[0][2].seconds
    distinct = pl.scan_parquet(files).select(pl.col("prompt").n_unique()).collect().item()
    print(
        f"\n{n:,} requests over {args.days} day(s), {len(files)} file(s), "
        f"{distinct / n:.0%} of prompts distinct\n"
    )
    print(
        table(
            [
                (
                    step,
                    who or "-",
                    f"{m.seconds:.1f}",
                    f"{n / m.seconds:,.0f}",
                    f"{m.peak_rss_mb:,.0f}",
                    f"{m.seconds / bare:.1f}x",
                )
                for step, who, m in results
            ],
            ("step", "code", "seconds", "rows/s", "peak RSS MB", "vs bare scan"),
        )
    )
    if not args.no_baseline:
        a = pl.read_parquet(root / "features-base.parquet")
        b = pl.read_parquet(root / f"features-{ROOT.name}.parquet")
        print(f"\nfeature tables of baseline and this tree identical: {a.equals(b)}")
        for name in ("account_scores", "campaigns"):
            a = pl.read_parquet(root / "out-base" / f"{name}.parquet")
            b = pl.read_parquet(root / f"out-{ROOT.name}" / f"{name}.parquet")
            print(f"{name} of `score --requests`, baseline and this tree identical: {a.equals(b)}")
    for name, prof in profiles.items():
        rows = [
            ("&nbsp;&nbsp;" * s["depth"] + s["stage"], f"{s['seconds']:.2f}", s["calls"])
            for s in prof["stages"]
        ]
        tracked = sum(s["seconds"] for s in prof["stages"] if not s["depth"])
        rows.append(
            ("other (start-up, imports, model load)", f"{prof['wall_seconds'] - tracked:.2f}", "")
        )
        print(f"\n`{name}` by stage ({prof['wall_seconds']:.1f} s wall, this tree)\n")
        print(table(rows, ("stage", "seconds", "calls")))
    kinds = signals_by_kind(root / f"store-{ROOT.name}")
    print(
        f"\nsignals by kind, one batch of {kinds['rows']:,} rows ({kinds['distinct']:,} distinct"
        " prompts), single thread:\n"
    )
    print(table([(k, f"{s:.3f}") for k, s in kinds["kinds"]], ("kind", "seconds")))
    (root / "results.json").write_text(
        json.dumps(
            {
                "rows": n,
                "days": args.days,
                "results": [(s, w, m.seconds, m.peak_rss_mb) for s, w, m in results],
                "profiles": profiles,
                "signals": kinds,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
