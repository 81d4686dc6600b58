"""Detection as code: rules analysts write, test, backtest and run in shadow mode.

One rule, one file. The shipped rules are Python modules in `detector/rules/builtin/`, each
defining `RULE`; a provider's own rules are TOML files in a folder (`--rules DIR`) whose
condition is a SQL expression over one rule table (`detector.rules.tables`), so writing one
needs no Python and no deploy. Both carry the same metadata: id (the file's name), title,
severity, subject, the table read, thresholds (the only place a number lives), description,
runbook, known false positives, known gaps, version, default mode, the columns shown as evidence,
and cases: rows that must fire and rows that must not, a legitimate look-alike among them.

Modes: `enforce` (a hit acts: an account rule flags the account, a campaign rule reports or
re-alerts), `shadow` (the hit is recorded with its evidence and never acts or alerts), `off`
(not evaluated). A rule's mode is its file's default unless an analyst changed it
(`distillguard rules mode`, or the dashboard's Rules page; written to the audit log). Every hit
is recorded with the rule's id, version and mode.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
import re
import string
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import polars as pl

from detector.rules import tables

log = logging.getLogger(__name__)

SEVERITIES = ("low", "medium", "high", "critical")
MODES = ("enforce", "shadow", "off")
EXPECT = ("fires", "quiet")
CASE_KINDS = ("campaign", "lookalike", "ordinary")
"""What a case stands for: a campaign the rule is for, a legitimate customer that looks like
one (a benchmark runner, a judge product, a shared NAT), or ordinary traffic."""
ID = re.compile(r"^[a-z][a-z0-9_]{2,63}$")

HITS = {
    "rule_id": pl.String,
    "rule_version": pl.Int64,
    "mode": pl.String,
    "subject_kind": pl.String,
    "subject_id": pl.String,
    "evidence": pl.String,
}
"""One row per rule and subject that fired; `evidence` is a JSON object of the rule's evidence
columns."""

Threshold = int | float | str | bool


class RuleError(ValueError):
    """A rule file that cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class Case:
    name: str
    expect: str  # "fires" or "quiet"
    kind: str  # CASE_KINDS
    row: Mapping[str, object]  # the columns that matter; the rest are tables.defaults


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    severity: str
    subject: str  # "account" or "campaign"
    table: str  # tables.KEYS
    thresholds: Mapping[str, Threshold]
    condition: Callable[[Mapping[str, Threshold]], pl.Expr] = field(repr=False)
    description: str
    runbook: str
    false_positives: tuple[str, ...]
    gaps: tuple[str, ...]
    version: int
    mode: str
    evidence: tuple[str, ...]
    cases: tuple[Case, ...]
    source: str = ""  # the file it came from

    def expr(self) -> pl.Expr:
        return self.condition(self.thresholds)

    def match(self, table: pl.DataFrame) -> pl.DataFrame:
        """The rows of `table` that fire: key and evidence columns."""
        key = tables.KEYS[self.table]
        return table.filter(self.expr().fill_null(False)).select(key, *self.evidence)

    def fires(self, case: Case) -> bool:
        row = tables.frame(self.table, [dict(case.row)])
        return row.filter(self.expr().fill_null(False)).height > 0


def violations(rule: Rule) -> list[str]:
    """Everything wrong with a rule, each naming the rule and the field; empty when usable."""
    where = f"{rule.source or rule.id}"
    out: list[str] = []

    def bad(name: str, text: str) -> None:
        out.append(f"{where}: field {name!r}: {text}")

    if not ID.match(rule.id):
        bad("id", f"{rule.id!r} must be lower_snake_case, 3-64 characters")
    if rule.source and Path(rule.source).stem != rule.id:
        bad("id", f"{rule.id!r} differs from the file's name {Path(rule.source).stem!r}")
    for name in ("title", "description", "runbook"):
        if not str(getattr(rule, name) or "").strip():
            bad(name, "is required")
    if rule.severity not in SEVERITIES:
        bad("severity", f"{rule.severity!r} is not one of {SEVERITIES}")
    if rule.mode not in MODES:
        bad("mode", f"{rule.mode!r} is not one of {MODES}")
    if rule.table not in tables.KEYS:
        bad("table", f"{rule.table!r} is not one of {tuple(tables.KEYS)}")
        return out
    if rule.subject != tables.SUBJECTS[rule.table]:
        bad("subject", f"a rule on {rule.table!r} is about a {tables.SUBJECTS[rule.table]!r}")
    if not isinstance(rule.version, int) or isinstance(rule.version, bool) or rule.version < 1:
        bad("version", f"{rule.version!r} must be a whole number >= 1")
    if not rule.false_positives:
        bad("false_positives", "list the legitimate traffic this rule can fire on")
    for name, value in rule.thresholds.items():
        if not isinstance(value, Threshold):
            bad("thresholds", f"{name} = {value!r} must be a number, string or boolean")
    cols = tables.schema(rule.table)
    missing = [c for c in rule.evidence if c not in cols]
    if missing:
        bad("evidence", f"table {rule.table!r} has no column(s) {missing}")
    try:
        empty = pl.DataFrame(schema=cols)
        dtype = empty.select(rule.expr().alias("fires")).schema["fires"]
        if dtype != pl.Boolean:
            bad("condition", f"must be true or false, gives {dtype}")
    except Exception as exc:  # polars raises one of several errors for a bad expression
        field_name = "where" if rule.source.endswith(".toml") else "condition"
        text = _first_line(exc).split("; valid columns")[0]
        bad(field_name, f"cannot be evaluated on table {rule.table!r}: {text}")
        return out
    expected = {e: [c for c in rule.cases if c.expect == e] for e in EXPECT}
    if not expected["fires"]:
        bad("cases", "needs at least one case that fires")
    if not any(c.kind == "lookalike" for c in expected["quiet"]):
        bad("cases", "needs a legitimate look-alike case that must not fire")
    for case in rule.cases:
        if case.expect not in EXPECT:
            bad("cases", f"{case.name}: expect {case.expect!r} is not one of {EXPECT}")
            continue
        if case.kind not in CASE_KINDS:
            bad("cases", f"{case.name}: kind {case.kind!r} is not one of {CASE_KINDS}")
        try:
            fired = rule.fires(case)
        except Exception as exc:
            bad("cases", f"{case.name}: {_first_line(exc)}")
            continue
        if fired != (case.expect == "fires"):
            wanted = "fire" if case.expect == "fires" else "stay quiet"
            bad("cases", f"{case.name}: expected to {wanted}, {'fired' if fired else 'did not'}")
    return out


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def shipped() -> list[Rule]:
    """The shipped rules, one module per rule in `detector/rules/builtin/`."""
    package = importlib.import_module("detector.rules.builtin")

    rules = []
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        rule = getattr(module, "RULE", None)
        if not isinstance(rule, Rule):
            raise RuleError(f"{module.__file__}: defines no RULE (a detector.rules.Rule)")
        rules.append(_with_source(rule, module.__file__))
    return rules


def _with_source(rule: Rule, source: str | None) -> Rule:
    from dataclasses import replace

    return replace(rule, source=str(source or ""))


def load_file(path: Path) -> Rule:
    """A user rule file (TOML). Raises RuleError naming the file and the field."""
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise RuleError(f"{path}: cannot read rule file: {exc}") from exc

    def need(name: str, kind: type | tuple[type, ...], default: object = ...):
        if name not in doc:
            if default is ...:
                raise RuleError(f"{path}: field {name!r}: is required")
            return default
        value = doc[name]
        if not isinstance(value, kind) or isinstance(value, bool) and kind is int:
            raise RuleError(f"{path}: field {name!r}: {value!r} has the wrong type")
        return value

    known = {
        "id", "title", "severity", "table", "subject", "version", "mode", "description",
        "runbook", "false_positives", "gaps", "evidence", "where", "thresholds", "cases",
    }  # fmt: skip
    unknown = sorted(set(doc) - known)
    if unknown:
        raise RuleError(f"{path}: unknown field(s) {unknown}; known: {sorted(known)}")
    table = need("table", str)
    if table not in tables.KEYS:
        raise RuleError(f"{path}: field 'table': {table!r} is not one of {tuple(tables.KEYS)}")
    thresholds = need("thresholds", dict, {})
    where = need("where", str)
    condition = _sql_condition(path, where, thresholds)
    cases = []
    for i, c in enumerate(need("cases", list, [])):
        if not isinstance(c, dict) or not isinstance(c.get("row", {}), dict):
            raise RuleError(f"{path}: field 'cases': case {i + 1} must be a table with a row")
        missing = [k for k in ("name", "expect", "kind") if k not in c]
        if missing:
            raise RuleError(f"{path}: field 'cases': case {i + 1} lacks {missing}")
        cases.append(Case(str(c["name"]), str(c["expect"]), str(c["kind"]), c.get("row", {})))
    rule = Rule(
        id=need("id", str),
        title=need("title", str),
        severity=need("severity", str),
        subject=need("subject", str, tables.SUBJECTS[table]),
        table=table,
        thresholds=thresholds,
        condition=condition,
        description=need("description", str),
        runbook=need("runbook", str),
        false_positives=tuple(need("false_positives", list, [])),
        gaps=tuple(need("gaps", list, [])),
        version=need("version", int),
        mode=need("mode", str, "shadow"),
        evidence=tuple(need("evidence", list, [])),
        cases=tuple(cases),
        source=str(path),
    )
    problems = violations(rule)
    if problems:
        raise RuleError("; ".join(problems))
    return rule


def _sql_condition(path: Path, where: str, thresholds: Mapping[str, Threshold]):
    """`where` (SQL, thresholds as {name}) as a condition; checks every name is a threshold
    and every threshold is used, so no number hides in the expression's text."""
    names = {f for _, f, _, _ in string.Formatter().parse(where) if f is not None}
    if "" in names or any(not n.isidentifier() for n in names):
        raise RuleError(f"{path}: field 'where': placeholders must be {{threshold_name}}")
    unknown, unused = sorted(names - set(thresholds)), sorted(set(thresholds) - names)
    if unknown:
        raise RuleError(f"{path}: field 'where': {unknown} not in [thresholds]")
    if unused:
        raise RuleError(f"{path}: field 'thresholds': {unused} not used in 'where'")

    def condition(values: Mapping[str, Threshold]) -> pl.Expr:
        text = where.format_map({k: _literal(v) for k, v in values.items()})
        try:
            return pl.sql_expr(text)
        except Exception as exc:
            raise RuleError(f"{path}: field 'where': {_first_line(exc)}") from exc

    return condition


def _literal(value: Threshold) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def load_dir(folder: Path) -> list[Rule]:
    """Every `*.toml` rule in `folder`; raises RuleError listing every bad file."""
    if not folder.is_dir():
        raise RuleError(f"{folder}: not a folder of rule files")
    rules, errors = [], []
    for path in sorted(folder.glob("*.toml")):
        try:
            rules.append(load_file(path))
        except RuleError as exc:
            errors.append(str(exc))
    if errors:
        raise RuleError("\n".join(errors))
    return rules


@dataclass(frozen=True)
class RuleSet:
    """The rules in force and each one's mode (an analyst's choice, else the file's)."""

    rules: tuple[Rule, ...]
    modes: Mapping[str, str] = field(default_factory=dict)

    def mode(self, rule: Rule) -> str:
        return self.modes.get(rule.id, rule.mode)

    def get(self, rule_id: str) -> Rule:
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        raise KeyError(f"no rule {rule_id!r}; known: {sorted(r.id for r in self.rules)}")

    def with_modes(self, modes: Mapping[str, str]) -> RuleSet:
        return RuleSet(self.rules, {**self.modes, **modes})

    def run(self, table: str, rows: pl.DataFrame, every: bool = False) -> pl.DataFrame:
        """The hits of every rule on `table` that is not off (with `every`, off ones too)."""
        out = []
        rows = tables.complete(table, rows)
        for rule in self.rules:
            mode = self.mode(rule)
            if rule.table != table or (mode == "off" and not every):
                continue
            hits = rule.match(rows)
            key = tables.KEYS[table]
            evidence = [
                orjson.dumps(_rounded(r), option=orjson.OPT_SORT_KEYS).decode()
                for r in hits.select(rule.evidence).iter_rows(named=True)
            ]
            out.append(
                pl.DataFrame(
                    {
                        "rule_id": rule.id,
                        "rule_version": rule.version,
                        "mode": mode,
                        "subject_kind": rule.subject,
                        "subject_id": hits[key].cast(pl.String),
                        "evidence": evidence,
                    },
                    schema=HITS,
                )
            )
        return pl.concat(out) if out else pl.DataFrame(schema=HITS)

    def enforced(self, hits: pl.DataFrame, rule_id: str | None = None) -> set[str]:
        """Subjects of `hits` whose rule is enforced (of one rule, with `rule_id`)."""
        keep = hits.filter(pl.col("mode") == "enforce")
        if rule_id is not None:
            keep = keep.filter(pl.col("rule_id") == rule_id)
        return set(keep["subject_id"].to_list())


def _rounded(row: dict) -> dict:
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}


def load(folder: Path | None = None, modes: Mapping[str, str] | None = None) -> RuleSet:
    """The shipped rules plus a folder of user rules; ids must be unique across both."""
    rules = shipped() + (load_dir(folder) if folder is not None else [])
    seen: dict[str, str] = {}
    for rule in rules:
        if rule.id in seen:
            raise RuleError(f"{rule.source}: field 'id': {rule.id!r} is also {seen[rule.id]}")
        seen[rule.id] = rule.source
    return RuleSet(tuple(rules), dict(modes or {}))


def reason(rule: Rule, evidence: str) -> str:
    """An account or campaign reason that names the rule and version."""
    values = ", ".join(f"{k} {v}" for k, v in orjson.loads(evidence).items())
    return f"rule {rule.id} v{rule.version} ({rule.title})" + (f": {values}" if values else "")


def check_all(rules: Iterable[Rule]) -> list[str]:
    """Every violation across `rules`, ids duplicated among them included."""
    rules = list(rules)
    out = [v for r in rules for v in violations(r)]
    ids = [r.id for r in rules]
    out += [f"{r}: duplicate id" for r in sorted({i for i in ids if ids.count(i) > 1})]
    return out
