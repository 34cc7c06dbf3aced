"""The parameter modules stack without a cycle: each may import only the ones below it.

``params`` (the record) < ``knobs`` (the key tables) < ``profiles`` < ``findings`` <
``resolve`` (the resolver). The import rule itself lives in one place, the table in
``docs/architecture.md`` that ``tests/test_import_rule.py`` enforces on every import (late
ones too); this test checks that the table keeps these layers in their order, so that a
row widened by mistake cannot let a layer import one above it.
"""

from __future__ import annotations

import pytest

from tests.test_import_rule import RULE

LAYERS = ("params", "knobs", "profiles", "findings", "resolve")


@pytest.mark.parametrize("index", range(len(LAYERS)), ids=LAYERS)
def test_a_layer_may_import_only_layers_below_it(index: int) -> None:
    module = f"harness.{LAYERS[index]}"
    assert module in RULE, f"{module} has no row in docs/architecture.md's import rule"
    above = {f"harness.{name}" for name in LAYERS[index:]}
    assert not RULE[module] & above, (
        f"docs/architecture.md lets {module} import {sorted(RULE[module] & above)}, "
        "at or above its layer")


def test_the_check_sees_a_widened_row(monkeypatch: pytest.MonkeyPatch) -> None:
    widened = {**RULE, "harness.knobs": RULE["harness.knobs"] | {"harness.resolve"}}
    monkeypatch.setattr(__import__(__name__, fromlist=["RULE"]), "RULE", widened)
    with pytest.raises(AssertionError, match="at or above"):
        test_a_layer_may_import_only_layers_below_it(LAYERS.index("knobs"))
