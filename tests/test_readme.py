"""README promises that tests can hold it to: the generated catalog, and every `zoo.…` name it shows."""

import pathlib
import re
import subprocess
import sys

import pytest

from zoo.models import catalog

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_catalog_table_is_the_generated_one():
    start, end = README.index(catalog.START), README.index(catalog.END)
    table = README[start + len(catalog.START):end].strip()
    assert table == catalog.markdown_table(), "README's catalog is stale: run `python -m zoo.models.catalog README.md`"


def readme_zoo_names() -> list[str]:
    """Every dotted `zoo.…` name in the README's code blocks and inline code."""
    code = re.findall(r"```[a-z]*\n(.*?)```", README, flags=re.S) + re.findall(r"`([^`\n]+)`", README)
    names = set()
    for chunk in code:
        # A name followed by "/" is a path (zoo/training/), not an attribute.
        names.update(re.findall(r"(?<![\w./-])(zoo(?:\.[A-Za-z_]\w*)+)(?![\w/])", chunk))
    return sorted(names)


@pytest.mark.slow
def test_every_zoo_name_in_the_readme_resolves_after_a_bare_import_zoo():
    names = readme_zoo_names()
    assert "zoo.export.load_model" in names and "zoo.build" in names, "the README walk found too little"
    script = (
        "import functools, sys, zoo\n"
        "missing = []\n"
        f"for name in {names!r}:\n"
        "    try:\n"
        "        functools.reduce(getattr, name.split('.')[1:], zoo)\n"
        "    except AttributeError as error:\n"
        "        missing.append(f'{name}: {error}')\n"
        "print('\\n'.join(missing))\n"
        "sys.exit(1 if missing else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, f"README names that do not resolve after `import zoo`:\n{result.stdout}{result.stderr[-2000:]}"
