"""The C++ command-line tool as the tests run it: where it is built, how it is run, and what a
refusal looks like (tests/cpp/, tests/runtime/test_limits_both_sides.py, tests/export/test_fingerprint.py)."""

import subprocess
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SOURCE = PROJECT_ROOT / "repmet" / "runtime" / "cpp"
BUILD = PROJECT_ROOT / "build" / "cpp"


def run_tool(tool: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(tool), *map(str, args)], capture_output=True, text=True, timeout=600)


def assert_refused(run: subprocess.CompletedProcess, *phrases: str) -> None:
    """Exit 1 or 2 with ``error: <sentence>`` holding every phrase, nothing on stdout, no abort."""
    assert run.returncode in (1, 2), (run.returncode, run.stderr[-2000:])
    assert run.stderr.startswith("error: "), run.stderr[-2000:]
    assert "terminate called" not in run.stderr and "Traceback" not in run.stderr, run.stderr[-2000:]
    for phrase in phrases:
        assert phrase in run.stderr, (phrase, run.stderr[-2000:])
    assert run.stdout == ""
