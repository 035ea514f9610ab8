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


# -- README.rst: the short door --------------------------------------------------

ROOT = DOCS.parent

#: README's two commands, verbatim (STYLE point 9): the demo, and the test
#: suite exactly as CI runs it.
DEMO_COMMAND = "python3 -m venv .venv && .venv/bin/pip install '.[demo]' && .venv/bin/vpc-requests demo"
TEST_COMMAND = "python3 -m venv .ci/venv && .ci/venv/bin/pip install -e '.[test]' && .ci/venv/bin/pytest"

#: README fits a screen or three (issue 11, section 5).
README_MAX_BYTES = 12_000

#: ``<docs/cli.rst>`` in a README link.
DOCS_LINK = re.compile(r"<(docs/[^>]+)>`_")


def missing_commands(readme: str) -> list[str]:
    """The two commands README lacks, each wanted whole on a line of its own."""
    lines = {line.strip() for line in readme.splitlines()}
    return [command for command in (DEMO_COMMAND, TEST_COMMAND) if command not in lines]


def ci_lacks(script: str) -> list[str]:
    """What ``.ci/run`` lacks of README's test command: its newest-releases
    lane makes the venv in ``.ci/venv``, installs the checkout editable with
    the ``test`` extra into it, and runs that venv's pytest."""
    lacking = []
    lane = re.search(r"^suite\s+python3\s+\.ci/venv\s+([\w,]+)", script, re.MULTILINE)
    if not lane or "test" not in lane.group(1).split(","):
        lacking.append("a lane 'suite python3 .ci/venv' whose extras include test")
    if not re.search(r'"\$python" -m venv "\$venv"', script):
        lacking.append("python -m venv into the lane's venv")
    if not re.search(r'"\$venv/bin/pip" install\b[^\n]* -e "\.\[\$extras\]"', script):
        lacking.append("pip install -e '.[extras]' from the venv")
    if not re.search(r'^\s*"\$venv/bin/pytest"', script, re.MULTILINE):
        lacking.append("the venv's pytest")
    return lacking


def broken_docs_links(readme: str) -> list[str]:
    """README's links into docs/ that name no file."""
    return [link for link in DOCS_LINK.findall(readme) if not (ROOT / link).is_file()]


def readme() -> str:
    return (ROOT / "README.rst").read_text(encoding="utf-8")


def test_readme_is_under_12_kb() -> None:
    size = (ROOT / "README.rst").stat().st_size
    assert size < README_MAX_BYTES, f"README.rst is {size} bytes; move detail into docs/"


def test_readme_gives_the_two_commands_verbatim() -> None:
    assert missing_commands(readme()) == []


def test_a_readme_without_the_test_command_is_caught() -> None:
    text = readme().replace(TEST_COMMAND, "pytest")
    assert missing_commands(text) == [TEST_COMMAND]
    assert missing_commands("") == [DEMO_COMMAND, TEST_COMMAND]


def test_ci_runs_readmes_test_command() -> None:
    assert ci_lacks((ROOT / ".ci" / "run").read_text(encoding="utf-8")) == []


@pytest.mark.parametrize(("old", "new"), [
    ("suite python3 .ci/venv test,", "suite python3 .ci/venv lint,"),  # no test extra
    ("suite python3 .ci/venv ", "suite python3 .ci/other "),           # another venv
    (' -e ".[$extras]"', ' ".[$extras]"'),                              # not editable
    ('"$venv/bin/pytest"', '"$venv/bin/python" -m unittest'),            # not pytest
])
def test_a_ci_script_that_drifts_from_the_command_is_caught(old: str, new: str) -> None:
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert old in script
    assert len(ci_lacks(script.replace(old, new))) >= 1


def test_readme_links_into_docs_name_real_pages() -> None:
    links = DOCS_LINK.findall(readme())
    assert "docs/configuration.rst" in links and "docs/security.rst" in links
    assert broken_docs_links(readme()) == []
    assert broken_docs_links("`gone <docs/nope.rst>`_") == ["docs/nope.rst"]
