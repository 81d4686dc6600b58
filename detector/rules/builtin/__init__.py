"""The shipped rules, one per module; each module defines `RULE` (a `detector.rules.Rule`)."""
