"""Rules as files: the collection test, user rule files, the docs, `rules test`."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from detector import rules
from detector.cli import app
from detector.rules import Case, tables
from detector.rules.docs import document

ROOT = Path(__file__).parents[3]
runner = CliRunner()

GOOD = """
id = "{id}"
title = "Grading at volume from a fresh account"
severity = "medium"
table = "accounts"
version = 2
mode = "{mode}"
description = "Fresh accounts that grade at volume."
runbook = "Read the samples; a judge product grades its own users' outputs."
false_positives = ["A new LLM-as-judge product"]
gaps = ["Aged accounts"]
evidence = ["share_grading", "account_age_days"]
where = "share_grading >= {{min_share}} AND account_age_days <= {{max_age}} AND tier = {{tier}}"

[thresholds]
min_share = 0.5
max_age = 30
tier = "free"

[[cases]]
name = "fresh grader"
expect = "fires"
kind = "campaign"
row = {{ share_grading = 0.9, account_age_days = 3.0, tier = "free" }}

[[cases]]
name = "established judge product"
expect = "quiet"
kind = "lookalike"
row = {{ share_grading = 0.95, account_age_days = 700.0, tier = "free" }}
"""


def write_rule(
    folder: Path, rule_id: str = "fresh_grader", mode: str = "shadow", edits: dict | None = None
) -> Path:
    """A valid rule file, with each `edits` key replaced by its value."""
    folder.mkdir(parents=True, exist_ok=True)
    text = GOOD.format(id=rule_id, mode=mode)
    for old, new in (edits or {}).items():
        assert old in text, old
        text = text.replace(old, new)
    path = folder / f"{rule_id}.toml"
    path.write_text(text)
    return path


def test_every_shipped_rule_is_complete_and_passes_its_cases():
    """The collection test (after Elastic's test_all_rules): one failure lists every violation."""
    shipped = rules.shipped()
    problems = rules.check_all(shipped)
    assert not problems, "\n".join(problems)
    assert len({r.id for r in shipped}) == len(shipped)
    for rule in shipped:
        assert Path(rule.source).stem == rule.id
        assert {c.expect for c in rule.cases} == {"fires", "quiet"}
        assert any(c.kind == "lookalike" and c.expect == "quiet" for c in rule.cases)
    # the policy that was inline lives in rules now
    ids = {r.id for r in shipped}
    assert {"campaign_report", "campaign_growth", "dismissed_campaign_growth"} <= ids
    assert {"reseller_hydra", "education_signup_farm"} <= ids


def test_the_collection_check_names_each_violation():
    rule = rules.shipped()[0]
    broken = replace(
        rule,
        id="Bad-Id",
        runbook=" ",
        severity="urgent",
        evidence=("no_such_column",),
        cases=(Case("wrongly expected", "fires", "campaign", {}),),
    )
    problems = rules.violations(broken)
    text = "\n".join(problems)
    for field in ("'id'", "'runbook'", "'severity'", "'evidence'", "'cases'"):
        assert field in text, (field, text)
    assert "look-alike" in text
    assert "wrongly expected: expected to fire, did not" in text
    assert rules.check_all([rule, rule]) == [f"{rule.id}: duplicate id"]


def test_a_threshold_change_that_breaks_a_case_is_caught():
    rule = next(r for r in rules.shipped() if r.id == "rubric_grading_farm")
    loose = replace(rule, thresholds={**rule.thresholds, "min_cluster": 1})
    problems = rules.violations(loose)
    assert any("LLM-as-judge product: expected to stay quiet, fired" in p for p in problems), (
        problems
    )


def test_a_user_rule_file_loads_and_fires_on_what_it_says(tmp_path):
    write_rule(tmp_path / "rules")
    ruleset = rules.load(tmp_path / "rules")
    rule = ruleset.get("fresh_grader")
    assert (rule.version, rule.mode, rule.subject) == (2, "shadow", "account")
    frame = tables.frame(
        "accounts",
        [
            {"account_id": "a", "share_grading": 0.6, "account_age_days": 10.0, "tier": "free"},
            {"account_id": "b", "share_grading": 0.6, "account_age_days": 10.0, "tier": "pro"},
            {"account_id": "c", "share_grading": 0.4, "account_age_days": 10.0, "tier": "free"},
            {"account_id": "d", "share_grading": 0.6, "account_age_days": 31.0, "tier": "free"},
        ],
    )
    hits = ruleset.run("accounts", frame)
    mine = hits.filter(pl.col("rule_id") == "fresh_grader")
    assert mine["subject_id"].to_list() == ["a"]
    assert mine["mode"].to_list() == ["shadow"]
    assert mine["evidence"].to_list() == ['{"account_age_days":10.0,"share_grading":0.6}']
    assert (
        ruleset.with_modes({"fresh_grader": "off"})
        .run("accounts", frame)
        .filter(pl.col("rule_id") == "fresh_grader")
        .is_empty()
    )


@pytest.mark.parametrize(
    "edits, message",
    [
        ({"share_grading >=": "no_such_feature >="}, "field 'where'"),
        ({"tier = {tier}": "tier = 'free'"}, "field 'thresholds': ['tier'] not used"),
        ({"{min_share}": "{min_shar}"}, "['min_shar'] not in [thresholds]"),
        ({'mode = "shadow"': 'mode = "loud"'}, "field 'mode': 'loud' is not one of"),
        ({'severity = "medium"\n': ""}, "field 'severity': is required"),
        ({'kind = "lookalike"': 'kind = "ordinary"'}, "needs a legitimate look-alike case"),
        ({"account_age_days = 700.0": "account_age_days = 7.0"}, "expected to stay quiet, fired"),
        ({'table = "accounts"': 'table = "requests"'}, "field 'table': 'requests'"),
        ({"version = 2": "version = 0"}, "field 'version'"),
        ({"version = 2": "version = 2\ncolour = 'red'"}, "unknown field(s) ['colour']"),
        ({"[thresholds]": "[thresholds"}, "cannot read rule file"),
    ],
)
def test_a_bad_rule_file_is_refused_naming_the_file_and_field(tmp_path, edits, message):
    path = write_rule(tmp_path / "rules", edits=edits)
    with pytest.raises(rules.RuleError) as caught:
        rules.load(tmp_path / "rules")
    assert str(path) in str(caught.value)
    assert message in str(caught.value), str(caught.value)


def test_a_user_rule_may_not_reuse_a_shipped_id(tmp_path):
    write_rule(tmp_path / "rules", rule_id="reseller_hydra")
    with pytest.raises(rules.RuleError, match="'reseller_hydra' is also"):
        rules.load(tmp_path / "rules")


def test_a_rule_id_must_match_its_file_name(tmp_path):
    path = write_rule(tmp_path / "rules")
    path.rename(tmp_path / "rules" / "other_name.toml")
    with pytest.raises(rules.RuleError, match="differs from the file's name 'other_name'"):
        rules.load(tmp_path / "rules")


def test_rules_docs_are_generated_from_the_rules():
    assert (ROOT / "docs" / "RULES.md").read_text() == document(rules.shipped())
    result = runner.invoke(app, ["rules", "docs"])
    assert result.exit_code == 0
    assert result.stdout == (ROOT / "docs" / "RULES.md").read_text()


def test_rules_test_passes_and_lists_every_failing_case(tmp_path):
    result = runner.invoke(app, ["rules", "test"])
    assert result.exit_code == 0, result.output
    n = sum(len(r.cases) for r in rules.shipped())
    assert f"{len(rules.shipped())} rules, {n} cases: all pass" in result.stdout

    folder = tmp_path / "rules"
    write_rule(folder)
    write_rule(folder, rule_id="fresh_grader_two")
    result = runner.invoke(app, ["rules", "test", "--rules", str(folder)])
    assert result.exit_code == 0, result.output
    assert f"{len(rules.shipped()) + 2} rules" in result.stdout
    # the look-alike case of one file now fires and another file names a missing column:
    # one run lists both, each with its file
    write_rule(folder, rule_id="fresh_grader_two", edits={"700.0": "7.0"})
    write_rule(folder, rule_id="fresh_grader_three", edits={"share_grading >=": "nope >="})
    result = runner.invoke(app, ["rules", "test", "--rules", str(folder)])
    assert result.exit_code == 1
    said = "".join(result.output.split())  # the console wraps long lines
    assert "fresh_grader_two.toml:field'cases':establishedjudgeproduct:expectedtostayquiet" in said
    assert "fresh_grader_three.toml:field'where'" in said


def test_rules_run_on_a_table_missing_columns_and_do_not_fire_on_them():
    """A model trained on fewer features (or an older feature set) still scores: a rule on a
    column the window lacks sees nulls and does not fire; the others still do."""
    partial = pl.DataFrame(
        {"account_id": ["a", "b"], "n_requests": [900, 5], "share_grading": [0.8, 0.8]}
    ).with_columns(pl.Series("cluster_size", [12, 1]))  # an integer column: cast to the type
    hits = rules.load().run("accounts", partial)
    assert hits["rule_id"].to_list() == ["rubric_grading_farm"]
    assert hits["subject_id"].to_list() == ["a"]
