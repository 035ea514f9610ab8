"""The documentation site (``docs/``) keeps up with the code: the semantics
page has an anchor for every rule of the contract, which code comments cite,
and the API page documents every public name. Reads the reST sources; no
Sphinx build here (``.ci/run`` builds the docs with ``-W``)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import vpc_requests

DOCS = Path(__file__).resolve().parent.parent / "docs"

#: The contract's rules, S1-S15 (DESIGN section 2).
RULES = [f"S{n}" for n in range(1, 16)]

#: ``.. _S7:`` before a section: Sphinx gives the section the id ``s7``, so
#: ``semantics.html#s7`` and ``:ref:`S7``` both reach it.
LABEL = re.compile(r"^\.\. _(S\d+):\s*$", re.MULTILINE)

#: ``.. autoclass:: Binding``, ``.. autofunction:: load_env``, ...
AUTODOC = re.compile(r"^\.\. auto(?:class|function|exception|data)::\s+(\S+)\s*$", re.MULTILINE)


def semantics_labels() -> list[str]:
    return LABEL.findall((DOCS / "semantics.rst").read_text(encoding="utf-8"))


def test_semantics_page_has_an_anchor_per_rule_in_order() -> None:
    assert semantics_labels() == RULES


@pytest.mark.parametrize("rule", RULES)
def test_each_rule_anchor_heads_a_section_that_names_it(rule: str) -> None:
    text = (DOCS / "semantics.rst").read_text(encoding="utf-8")
    heading = re.search(rf"^\.\. _{rule}:\s*\n\s*\n({rule}\. .+)\n(-+)$", text, re.MULTILINE)
    assert heading, f"no section titled '{rule}. ...' right after the label {rule}"
    assert len(heading.group(2)) >= len(heading.group(1))


def test_api_page_documents_every_public_name() -> None:
    documented = {
        name.rsplit(".", 1)[-1] if name.startswith("vpc_requests.") and name.count(".") == 1 else name
        for name in AUTODOC.findall((DOCS / "api.rst").read_text(encoding="utf-8"))
    }
    missing = sorted(set(vpc_requests.__all__) - documented)
    assert not missing, f"docs/api.rst does not document: {', '.join(missing)}"


def test_api_page_documents_nothing_that_is_not_exported() -> None:
    # The top-level names on the page (not vpc_requests.<module>.<name>)
    # must all exist: a rename in __init__ must not leave a stale entry.
    top_level = [name for name in AUTODOC.findall((DOCS / "api.rst").read_text(encoding="utf-8"))
                 if "." not in name]
    assert set(top_level) <= set(vpc_requests.__all__)
