"""The wheel: what it contains, and that it works installed, from outside the repository.

The wheel is built from a copy of the sources (the checkout gets no build/ or egg-info) with
the venv's setuptools (--no-build-isolation: nothing is downloaded), then installed with
--no-deps into a fresh venv that sees this venv's packages through a .pth file, and imported
with the current folder outside the repository.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCES = (
    "pyproject.toml",
    "requirements.txt",
    "README.md",
    "LICENSE",
    "tetris_jax",
    "dreamer_jax",
    "experiments",
)


def _version() -> str:
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        return tomllib.load(f)["project"]["version"]


def _run(cmd: list[str], check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.setdefault("JAX_PLATFORMS", "cpu")
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, **kwargs)
    assert out.returncode == 0 or not check, (cmd, out.stdout[-3000:], out.stderr[-3000:])
    return out


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(wheel path, the fresh venv's python, a folder outside the repository)."""
    import setuptools

    major = int(setuptools.__version__.split(".")[0])
    assert major >= 77, (
        f"setuptools {setuptools.__version__} cannot build this project "
        "(needs >= 77, requirements-dev.txt): run `make install`"
    )
    tmp = tmp_path_factory.mktemp("packaging")
    src = tmp / "src"
    for name in SOURCES:
        path = os.path.join(ROOT, name)
        if os.path.isdir(path):
            shutil.copytree(
                path, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
            )
        else:
            os.makedirs(src, exist_ok=True)
            shutil.copy(path, src / name)
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-w",
            str(tmp / "dist"),
            str(src),
        ]
    )
    (wheel,) = (tmp / "dist").glob("*.whl")
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = str(venv / "bin" / "python")
    site = _run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
    # The dependencies: this venv's site-packages, after the fresh venv's own.
    with open(os.path.join(site.stdout.strip(), "project_deps.pth"), "w") as f:
        f.write(sysconfig.get_paths()["purelib"] + "\n")
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            python,
            "install",
            "--no-deps",
            "--no-index",
            str(wheel),
        ]
    )
    outside = tmp / "elsewhere"
    outside.mkdir()
    return wheel, python, outside


def test_wheel_contents_and_import_from_outside(installed):
    wheel, python, outside = installed
    version = _version()
    assert wheel.name == f"tetris_dreamer_jax-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        info = f"tetris_dreamer_jax-{version}.dist-info"
        metadata = z.read(f"{info}/METADATA").decode()
    for name in (
        "tetris_jax/__init__.py",
        "tetris_jax/env.py",
        "tetris_jax/rollout.py",
        "dreamer_jax/__init__.py",
        "dreamer_jax/agent.py",
        "experiments/__init__.py",
        "experiments/train.py",
        "experiments/debug.py",
        "experiments/lib/__init__.py",
        "experiments/lib/trainer.py",
        f"{info}/licenses/LICENSE",
    ):
        assert name in names, sorted(names)
    assert not any(n.startswith("tests/") for n in names), sorted(names)
    assert re.search(r"^License-Expression: Apache-2.0$", metadata, re.M), metadata[:2000]
    assert re.search(r"^Requires-Dist: jax<0\.13,>=0\.10\.2$", metadata, re.M), metadata[:3000]

    code = (
        "import json, dreamer_jax, experiments.lib.trainer, tetris_jax; "
        "print(json.dumps({'tetris': tetris_jax.__version__, "
        "'dreamer': dreamer_jax.__version__, 'file': tetris_jax.__file__, "
        "'lib': experiments.lib.trainer.__file__}))"
    )
    got = json.loads(_run([python, "-c", code], cwd=outside).stdout.strip().splitlines()[-1])
    assert got["tetris"] == got["dreamer"] == version, got
    venv = os.path.dirname(os.path.dirname(python))
    for key in ("file", "lib"):  # The installed copy, not the checkout.
        assert got[key].startswith(venv) and not got[key].startswith(ROOT + os.sep), got
    # absl's --helpshort exits with status 1.
    help_text = _run(
        [python, "-m", "experiments.train", "--helpshort"], check=False, cwd=outside
    ).stdout
    assert "--distributed" in help_text and "--num_processes" in help_text


def test_readme_snippet_runs_installed_as_pasted(installed):
    """The README's "Stepping 4096 boards at once" block, fed line by line to an interactive
    console (as pasted into `python`), from outside the repository."""
    _, python, outside = installed
    with open(os.path.join(ROOT, "README.md")) as f:
        readme = f.read()
    block = re.search(r"## Stepping 4096 boards at once\n\n```python\n(.*?)```", readme, re.S)
    assert block, "README section not found"
    (outside / "snippet.py").write_text(block.group(1))
    console = (
        "import code, sys; c = code.InteractiveConsole(); "
        "lines = open('snippet.py').read().splitlines() + ['']; "
        "more = [c.push(line) for line in lines]; "
        "sys.exit(1 if more[-1] else 0)"
    )
    out = _run([python, "-c", console], cwd=outside)
    assert "Traceback" not in out.stderr and "SyntaxError" not in out.stderr, out.stderr[-3000:]
    assert re.search(r"mean lines this episode: \d", out.stdout), out.stdout[-2000:]
