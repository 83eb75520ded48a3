"""The PII policy file: the default covers the issue's fields, a broken policy is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from catalog_sync.privacy import DEFAULT_POLICY_PATH, MaskAction, PolicyInvalidError, load_policy


@pytest.mark.parametrize(
    ("tag", "codes"),
    [
        ("541", "acdeh"),
        ("561", "a"),
        ("583", "kx"),
        ("852", "x"),
        ("876", "cex"),
        ("877", "cex"),
        ("878", "cex"),
        ("952", "gvx"),
        ("960", "s"),
        ("980", "bdef"),
        ("938", "cd"),
        ("999", "p"),
    ],
)
def test_default_policy_masks_the_required_subfields(tag: str, codes: str) -> None:
    policy = load_policy()
    for code in codes:
        assert policy.rule_for(tag, code) is not None, f"{tag} ${code} is not masked"


def test_free_text_notes_are_redacted_and_prices_stay_comparable() -> None:
    policy = load_policy()
    for tag, code in [("583", "x"), ("852", "x"), ("876", "x"), ("952", "x"), ("561", "a")]:
        rule = policy.rule_for(tag, code)
        assert rule is not None and rule.action is MaskAction.REDACT
    for tag, code in [("541", "h"), ("876", "c"), ("952", "g"), ("960", "s"), ("980", "e")]:
        rule = policy.rule_for(tag, code)
        assert rule is not None and rule.action is MaskAction.HASH


def test_only_561_honours_the_not_private_indicator() -> None:
    policy = load_policy()
    keep = {r.rule: r.keep_when_ind1 for r in policy.fields if r.keep_when_ind1}
    assert keep == {"provenance-private": frozenset({"1"})}


def policy_file(tmp_path: Path, **changes: object) -> Path:
    raw = yaml.safe_load(DEFAULT_POLICY_PATH.read_text(encoding="utf-8"))
    raw.update(changes)
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def test_the_default_policy_file_round_trips(tmp_path: Path) -> None:
    assert load_policy(policy_file(tmp_path)) == load_policy()


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        (
            {"fields": [{"rule": "x", "tag": "541", "subfields": ["h"], "action": "encrypt"}]},
            "action",
        ),
        ({"fields": [{"rule": "x", "tag": "001", "subfields": ["a"], "action": "hash"}]}, "001"),
        (
            {"fields": [{"rule": "x", "tag": "541", "subfields": ["hh"], "action": "hash"}]},
            "single",
        ),
        (
            {
                "fields": [
                    {"rule": "a", "tag": "541", "subfields": ["h"], "action": "hash"},
                    {"rule": "b", "tag": ["541"], "subfields": ["h"], "action": "drop"},
                ]
            },
            "541 $h",
        ),
        ({"scrubbers": [{"name": "email", "pattern": "(a)@", "replacement": "x"}]}, "capturing"),
        ({"scrubbers": [{"name": "email", "pattern": "[a-", "replacement": "x"}]}, "compile"),
        ({"scrubbers": [{"name": "any", "pattern": "a*", "replacement": "x"}]}, "empty"),
        ({"scrub_record_tags": ["5xx"]}, "5XX"),
        ({"unknown_key": 1}, "unknown_key"),
    ],
)
def test_a_broken_policy_is_refused_with_the_problem_named(
    tmp_path: Path, changes: dict[str, object], says: str
) -> None:
    with pytest.raises(PolicyInvalidError) as err:
        load_policy(policy_file(tmp_path, **changes))
    assert err.value.reason == "pii_policy_invalid"
    assert says in str(err.value)


def test_an_unreadable_policy_file_is_a_policy_error(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("fields: [unclosed", encoding="utf-8")
    with pytest.raises(PolicyInvalidError):
        load_policy(path)
    with pytest.raises(PolicyInvalidError):
        load_policy(tmp_path / "missing.yaml")


def test_a_policy_file_edited_since_it_was_read_is_read_again(tmp_path: Path) -> None:
    """load_policy parses a file once per version: an edit must still take effect, a broken
    edit must still be refused, and fixing it must be seen."""
    path = policy_file(tmp_path, redaction_marker="[one]")
    assert load_policy(path).redaction_marker == "[one]"
    assert load_policy(path) is load_policy(path)
    policy_file(tmp_path, redaction_marker="[two, longer]")
    assert load_policy(path).redaction_marker == "[two, longer]"
    path.write_text("fields: [unclosed", encoding="utf-8")
    with pytest.raises(PolicyInvalidError):
        load_policy(path)
    policy_file(tmp_path, redaction_marker="[three]")
    assert load_policy(path).redaction_marker == "[three]"


@pytest.mark.parametrize(
    ("tag", "scanned"),
    [("500", True), ("590", True), ("852", True), ("880", True), ("245", False), ("650", False)],
)
def test_scrubbers_scan_notes_holdings_and_local_fields(tag: str, scanned: bool) -> None:
    assert load_policy().scrubbed_tag(tag) is scanned
