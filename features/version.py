"""The feature set's version, derived from what decides feature values.

`FEATURE_SET` is written into every feature table, model checkpoint, score and warehouse run.
It is `account-` plus a hash of the feature definitions: the registry (each feature's name,
dtype, SQL, stage and default, the free-mail list and country offsets), the aggregation SQL that
`features.aggregate` generates from it, the per-request signal settings (their version, masks and
slice lengths), every marker lexicon and the population-relative inputs. Change any of them and
the version moves by itself, so a model trained on other definitions is refused instead of
scoring values it never saw.
"""

from __future__ import annotations

import hashlib
import json

from features import markers, registry, signals

SIGNAL_SETTINGS = (
    "SIGNALS_VERSION",
    "SKELETON_HEAD",
    "SKELETON_TAIL",
    "MARKER_CHARS",
    "EDGE_CHARS",
    "MINHASH_WORDS",
    "MINHASH_SEEDS",
    "MASK",
    "WHITESPACE",
    "CARRIED",
)
"""The settings of `features.signals` whose change alters signal values; code changes that do
so bump `SIGNALS_VERSION` (which also keys the signal cache)."""


def definitions() -> str:
    """Canonical text of everything the hash covers (stable across runs and machines)."""
    from features.aggregate import feature_sql  # it writes FEATURE_SET, hence not at the top

    sql = feature_sql("signals", "accounts", 0.0, 86400.0, "firsts", feature_set="?")
    content = {
        "features": [
            [f.name, f.dtype, f.family, f.sql, f.stage, f.default] for f in registry.FEATURES
        ],
        "freemail": list(registry.FREEMAIL),
        "country_offsets": sorted(registry.COUNTRY_UTC_OFFSET.items()),
        "aggregate_sql": sql,
        "signals": {name: getattr(signals, name) for name in SIGNAL_SETTINGS},
        "lexicons": [[f.name, list(f.phrases), list(f.patterns)] for f in markers.FAMILIES],
        "population": list(registry.POPULATION),
    }
    return json.dumps(content, sort_keys=True, ensure_ascii=False, default=list)


FEATURE_HASH = hashlib.sha256(definitions().encode()).hexdigest()[:12]
"""Content hash of the feature definitions (first 12 hex digits of SHA-256)."""
FEATURE_SET = f"account-{FEATURE_HASH}"
"""Name and version of the feature set."""
