"""The release as pip and PyPI see it: `python -m build` makes the sdist and, from it, the
wheel (so a file the sdist lacks fails the wheel too); `twine check --strict` passes; the
sdist carries the tests, the screenshots and the license; the wheel installs the man page
into <prefix>/share/man/man1; the version has one source.

One test builds (it takes seconds and fetches hatchling into an isolated environment);
the others read the source tree."""

from __future__ import annotations

import ast
import email.parser
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

import portscope
from portscope import __version__, manpage
from real_servers import missing

if sys.version_info >= (3, 11):
    import tomllib
else:  # pytest needs tomli on 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
# What the sdist must carry besides the package: everything under these, and these files.
SHIPPED_DIRS = ("tests", "screenshots")
SHIPPED_FILES = ("app/LICENSE", "README.md", "pyproject.toml", "app/portscope/man/portscope.1")
NOT_SHIPPED = ("__pycache__", ".pyc", "snapshot_report.html")
# Left out of the copy the test builds from: what no checkout has. (__pycache__ is copied:
# the sdist must leave it out.)
NOT_COPIED = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "*.egg-info", ".*_cache", "snapshot_report.html"
)


def test_version_has_one_source() -> None:
    """pyproject.toml reads portscope.__version__ from the module's text (hatchling's
    version source), which never imports Textual or psutil at build time; __init__ stays
    this small."""
    project = PYPROJECT["project"]
    assert "version" not in project
    assert "version" in project["dynamic"]
    assert PYPROJECT["tool"]["hatch"]["version"]["path"] == "app/portscope/__init__.py"
    tree = ast.parse(Path(portscope.__file__).read_text(encoding="utf-8"))
    kinds = [type(node).__name__ for node in tree.body]
    assert kinds == ["Expr", "ImportFrom", "Assign"], kinds  # docstring, __future__, version
    assert isinstance(tree.body[1], ast.ImportFrom) and tree.body[1].module == "__future__"
    assign = tree.body[2]
    assert isinstance(assign, ast.Assign) and isinstance(assign.value, ast.Constant)
    assert assign.value.value == __version__
    done = subprocess.run(
        [sys.executable, "-m", "portscope", "--version"], capture_output=True, text=True,
        timeout=60,
    )
    assert done.stdout == f"portscope {__version__}\n"


def test_license_is_an_spdx_expression_with_its_file() -> None:
    project = PYPROJECT["project"]
    assert project["license"] == "MIT"
    # Under app/: the repository's top level is fixed (pyproject, README, app, tests,
    # screenshots).
    assert project["license-files"] == ["app/LICENSE"]
    text = (ROOT / "app" / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License\n\nCopyright (c) 2026 the portscope authors\n")
    # PEP 639's string form needs hatchling 1.27.
    assert any(r.startswith("hatchling>=1.27") for r in PYPROJECT["build-system"]["requires"])


def shipped_on_disk(root: Path) -> set[str]:
    found = set(SHIPPED_FILES)
    for top in SHIPPED_DIRS:
        for path in (root / top).rglob("*"):
            name = path.relative_to(root).as_posix()
            if path.is_file() and not any(bad in name for bad in NOT_SHIPPED):
                found.add(name)
    return found


def run(*argv: str | Path, cwd: Path = ROOT) -> str:
    done = subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, timeout=900, cwd=cwd
    )
    assert done.returncode == 0, f"{argv}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def test_sdist_and_wheel_build_check_and_install(tmp_path: Path) -> None:
    for module in ("build", "twine"):
        try:
            __import__(module)
        except ImportError:
            missing(f"{module} is not installed (the test extra has it)")
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=NOT_COPIED)
    expected = shipped_on_disk(source)
    out = tmp_path / "dist"
    run(sys.executable, "-m", "build", "--outdir", out, source)
    sdist = out / f"portscope-{__version__}.tar.gz"
    wheel = out / f"portscope-{__version__}-py3-none-any.whl"
    assert sorted(p.name for p in out.iterdir()) == sorted([sdist.name, wheel.name])
    checked = run(sys.executable, "-m", "twine", "check", "--strict", sdist, wheel)
    assert checked.count("PASSED") == 2, checked

    with tarfile.open(sdist) as tar:
        prefix = f"portscope-{__version__}/"
        in_sdist = {m.name.removeprefix(prefix) for m in tar.getmembers() if m.isfile()}
    assert not expected - in_sdist, sorted(expected - in_sdist)
    assert not [name for name in in_sdist if any(bad in name for bad in NOT_SHIPPED)]

    page = manpage.PAGE.read_bytes()
    with zipfile.ZipFile(wheel) as whl:
        names = set(whl.namelist())
        assert whl.read(f"portscope-{__version__}.data/data/share/man/man1/portscope.1") == page
        assert "portscope/man/portscope.1" in names
        assert f"portscope-{__version__}.dist-info/licenses/app/LICENSE" in names
        metadata = email.parser.Parser().parsestr(
            whl.read(f"portscope-{__version__}.dist-info/METADATA").decode()
        )
    assert metadata["Version"] == __version__
    assert metadata["License-Expression"] == "MIT"
    assert metadata["License-File"] == "app/LICENSE"
    classifiers = metadata.get_all("Classifier") or []
    assert "Typing :: Typed" in classifiers and "Environment :: Console" in classifiers
    runtime = {r for r in metadata.get_all("Requires-Dist") or [] if "extra ==" not in r}
    assert runtime == {"textual<9,>=8.2", "psutil>=6", "rich>=14.2", "shtab>=1.10"}

    # Installed (pip, as pipx does), the page lands where man looks for a venv on PATH.
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv)
    run(venv / "bin" / "python", "-m", "pip", "install", "-q", "--no-deps", "--no-index", wheel)
    assert (venv / "share" / "man" / "man1" / "portscope.1").read_bytes() == page
    version = run(venv / "bin" / "portscope", "--version", cwd=tmp_path)
    assert version == f"portscope {__version__}\n"


@pytest.mark.parametrize("name", ["textual", "psutil", "rich", "shtab"])
def test_installed_dependencies_meet_the_pins(name: str) -> None:
    """The pins are what the code was tested with at least: the environment running these
    tests satisfies them (pip would have refused otherwise, unless installed by hand)."""
    from importlib.metadata import version

    from packaging.requirements import Requirement

    pins = [Requirement(r) for r in PYPROJECT["project"]["dependencies"]]
    pin = next(r for r in pins if r.name == name)
    assert pin.specifier.contains(version(name)), (name, version(name), str(pin.specifier))
