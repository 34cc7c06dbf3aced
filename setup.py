"""Packaging beyond pyproject.toml: the data folders at the repository root ship in the wheel.

``fixtures/``, ``loadprofiles/``, ``suites/`` and ``upstream/`` stay where users and the
README expect them; the wheel carries each as ``harness/_data/<folder>``, where
:func:`harness.files.data_root` looks first (``tests/test_install.py`` installs a wheel
into a fresh venv and runs the CLI there).
"""

from setuptools import find_packages, setup

DATA_DIRS = ("fixtures", "loadprofiles", "suites", "upstream")  # harness.files.DATA_DIRS
DATA = {f"harness._data.{d}": d for d in DATA_DIRS}

setup(
    packages=[*find_packages(include=["harness", "harness.*"]), *DATA],
    package_dir=DATA,
    package_data={name: ["**/*"] for name in DATA},
    exclude_package_data={name: ["**/__pycache__/*", "**/*.pyc"] for name in DATA},
)
