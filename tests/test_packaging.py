"""What installing the project puts on sys.path: every subpackage, and no top-level `datasets`."""

import configparser
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _declared_packages():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    return {line.strip() for line in config["options"]["packages"].splitlines() if line.strip()}


def _source_packages():
    found = set()
    for top, name in (("zoo", "zoo"), ("datasets", "zoo.datasets")):
        for init in (ROOT / top).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / top)
            found.add(".".join([name, *relative.parts]))
    return found


def test_setup_cfg_lists_every_package_of_the_source_tree():
    # A package missing from the list is left out of a (non-editable) wheel.
    assert _declared_packages() == _source_packages()


def test_installing_zoo_does_not_provide_a_top_level_datasets_package(tmp_path):
    # Run outside the checkout so its folder is not on sys.path: only what was installed counts.
    code = (
        "import importlib.util\n"
        "assert importlib.util.find_spec('zoo') is not None\n"
        "spec = importlib.util.find_spec('datasets')\n"
        "print(spec.origin if spec else 'none')\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300, check=True)
    origin = done.stdout.strip().splitlines()[-1]
    assert origin == "none" or not Path(origin).resolve().is_relative_to(ROOT), origin
