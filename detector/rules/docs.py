"""docs/RULES.md, generated from the rules (`distillguard rules docs > docs/RULES.md`)."""

from __future__ import annotations

from collections.abc import Iterable

from detector.rules import Rule, tables

HEADER = """# Rules

Generated from `detector/rules/builtin/` by `distillguard rules docs`; do not edit by hand (a
test fails when this file and the rules disagree). How rules work, their modes and the file
format for your own rules: the "Rules" section of the README.

A rule reads one table (`accounts`, `clusters`, `cluster_surges` or `campaign_history`, described in
`detector/rules/tables.py`) and fires on the rows that match. `enforce` acts (flags, reports,
alerts), `shadow` records the hit only, `off` skips the rule. New detection rules ship in
shadow: promote one after its backtest (`distillguard rules backtest`) shows it is precise on
your own traffic.
"""


def document(rules: Iterable[Rule]) -> str:
    rules = list(rules)
    out = [
        HEADER,
        "| rule | version | default mode | severity | subject | table |",
        "| --- " * 6 + "|",
    ]
    out += [
        f"| [{r.id}](#{r.id}) | {r.version} | {r.mode} | {r.severity} | {r.subject} | {r.table} |"
        for r in rules
    ]
    for r in rules:
        out += [
            "",
            f"## {r.id}",
            "",
            f"**{r.title}** (v{r.version}, {r.severity}; "
            f"default mode `{r.mode}`; reads `{r.table}`, fires on a {r.subject})",
            "",
        ]
        out += [r.description, "", "Thresholds:", ""]
        out += [f"- `{k}` = {v!r}" for k, v in r.thresholds.items()] or ["- none"]
        out += ["", f"Evidence shown: {', '.join(f'`{c}`' for c in r.evidence) or 'none'}", ""]
        out += ["Runbook: " + r.runbook, "", "Known false positives:", ""]
        out += [f"- {t}" for t in r.false_positives]
        out += ["", "Known gaps:", ""] + ([f"- {t}" for t in r.gaps] or ["- none listed"])
        out += [
            "",
            "Cases:",
            "",
            "| case | kind | expect | columns set |",
            "| --- | --- | --- | --- |",
        ]
        for c in r.cases:
            cols = ", ".join(f"`{k}` {v!r}" for k, v in c.row.items()) or "(defaults)"
            out.append(f"| {c.name} | {c.kind} | {c.expect} | {cols} |")
    keys = ", ".join(f"`{t}` (key `{k}`)" for t, k in tables.KEYS.items())
    out += ["", "## Tables", "", f"Rule tables: {keys}.", ""]
    return "\n".join(out)
