"""The feature-set version follows the definitions: any change to them moves it."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import pytest

from features import markers, registry, version
from features.families import Feature


def _hash() -> str:
    return hashlib.sha256(version.definitions().encode()).hexdigest()[:12]


def test_version_is_the_hash_of_the_definitions_and_stable():
    assert f"account-{version.FEATURE_HASH}" == version.FEATURE_SET
    assert _hash() == version.FEATURE_HASH
    assert _hash() == _hash()


@pytest.mark.parametrize(
    "change",
    ["lexicon", "feature_sql", "helper_sql", "signals"],
)
def test_changing_any_definition_moves_the_version(monkeypatch, change):
    if change == "lexicon":
        fam = markers.FAMILIES[0]
        changed = replace(fam, phrases=(*fam.phrases, "a brand new phrase"))
        monkeypatch.setattr(markers, "FAMILIES", (changed, *markers.FAMILIES[1:]))
    elif change == "feature_sql":
        first: Feature = registry.FEATURES[0]
        changed = replace(first, sql="count(*) + 1")
        monkeypatch.setattr(registry, "FEATURES", (changed, *registry.FEATURES[1:]))
        import features.aggregate

        monkeypatch.setattr(features.aggregate, "FEATURES", registry.FEATURES)
    elif change == "helper_sql":
        import features.aggregate

        helper = registry.HELPERS[0]
        changed = replace(helper, sql=helper.sql + " AND 1 = 1")
        monkeypatch.setattr(features.aggregate, "HELPERS", (changed, *registry.HELPERS[1:]))
    else:
        from features import signals

        monkeypatch.setattr(signals, "SKELETON_HEAD", signals.SKELETON_HEAD + 1)
    assert _hash() != version.FEATURE_HASH
