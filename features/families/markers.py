"""Marker shares: what the account's requests ask for (reasoning elicitation, grading, ...),
one feature per lexicon family of `features.markers`."""

from features.families import Feature, share
from features.markers import FAMILIES

FAMILY = "markers"
HELPERS = ()
FEATURES = tuple(
    Feature(
        f"share_{fam.name.removeprefix('marker_')}",
        "DOUBLE",
        FAMILY,
        f"share of requests that {fam.meaning}",
        share(fam.name),
    )
    for fam in FAMILIES
)
