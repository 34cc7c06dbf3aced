"""Label and field selectors: the apimachinery semantics, as tables."""

from __future__ import annotations

import pytest

from harness.emulator.api.selectors import (
    SelectorError,
    label_selector_from_object,
    parse_field_selector,
    parse_label_selector,
)

LABELS = {"app": "web", "tier": "front", "replicas": "3"}


@pytest.mark.parametrize(("selector", "matches"), [
    pytest.param("", True, id="empty matches everything"),
    pytest.param("app=web", True, id="equality"),
    pytest.param("app==web", True, id="double equals"),
    pytest.param("app=db", False, id="equality mismatch"),
    pytest.param("app!=db", True, id="inequality"),
    pytest.param("missing!=x", True, id="inequality matches an absent key"),
    pytest.param("app in (web,db)", True, id="in"),
    pytest.param("app notin (web)", False, id="notin"),
    pytest.param("missing notin (x)", True, id="notin matches an absent key"),
    pytest.param("missing in (x)", False, id="in needs the key"),
    pytest.param("tier", True, id="exists"),
    pytest.param("!tier", False, id="does not exist"),
    pytest.param("!missing", True, id="absent key"),
    pytest.param("replicas>2", True, id="gt"),
    pytest.param("replicas<3", False, id="lt is strict"),
    pytest.param("app>1", False, id="gt on a non-integer value"),
    pytest.param(" app = web , tier in ( front ) ", True, id="whitespace around tokens"),
    pytest.param("app=web,tier=back", False, id="requirements are ANDed"),
])
def test_label_selector_matches(selector: str, matches: bool) -> None:
    assert parse_label_selector(selector).matches(LABELS) is matches


@pytest.mark.parametrize("selector", [
    "app in web", "app in ()", "app=web,", "=web", "app=we b", "app>x", "Bad Key=1",
    "app notin (a", "app=" + "x" * 64,
])
def test_bad_label_selector_is_rejected(selector: str) -> None:
    with pytest.raises(SelectorError):
        parse_label_selector(selector)


def test_object_form() -> None:
    sel = label_selector_from_object({"matchLabels": {"app": "web"}, "matchExpressions": [
        {"key": "tier", "operator": "In", "values": ["front"]},
        {"key": "legacy", "operator": "DoesNotExist"}]})
    assert sel.matches(LABELS)
    assert not sel.matches({**LABELS, "legacy": "1"})


POD = {"metadata": {"name": "p", "namespace": "ns"},
       "spec": {"nodeName": "gpu-1", "hostNetwork": False},
       "status": {"phase": "Running"}}


@pytest.mark.parametrize(("selector", "matches"), [
    ("metadata.name=p", True),
    ("metadata.name==p,status.phase=Running", True),
    ("spec.nodeName!=gpu-1", False),
    ("spec.nodeName=", False),
    ("spec.hostNetwork=false", True),
    ("metadata.name=a\\,b", False),
])
def test_field_selector(selector: str, matches: bool) -> None:
    fields = ("metadata.name", "metadata.namespace", "spec.nodeName", "status.phase",
              "spec.hostNetwork")
    assert parse_field_selector(selector, fields).matches(POD) is matches


def test_escaped_field_value() -> None:
    sel = parse_field_selector(r"metadata.name=a\,b\=c")
    assert sel.requirements[0].value == "a,b=c"


def test_unsupported_field_is_rejected() -> None:
    with pytest.raises(SelectorError, match="field label not supported: spec.bogus"):
        parse_field_selector("spec.bogus=1", ("metadata.name",))
