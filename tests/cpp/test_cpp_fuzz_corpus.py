"""The C++ fuzz targets (repmet/runtime/cpp/fuzz/: libFuzzer + AddressSanitizer + UBSan, no
libtorch) run once over their committed corpus (real files and the regression inputs of past
findings): each input must be parsed or refused with repmet::Error, with no crash, leak, UB or
other exception. This is the corpus, not the fuzzer (benchmarks/fuzz.sh fuzzes); it needs clang
(.ci/run installs it) and adds about a minute (the sanitized build) to the suite."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FUZZ = ROOT / "repmet" / "runtime" / "cpp" / "fuzz"
BUILD = ROOT / "build" / "fuzz"
TARGETS = ("gallery", "metadata", "coco", "image")


@pytest.fixture(scope="module")
def fuzz_targets() -> Path:
    if shutil.which("clang++") is None:
        pytest.skip("clang++ is missing (apt-get install -y clang): the fuzz targets need libFuzzer and the "
                    "sanitizers; .ci/run installs it, so CI runs this test")
    env = dict(os.environ, CC="clang", CXX="clang++")
    for command in (["cmake", "-S", str(FUZZ), "-B", str(BUILD)],
                    ["cmake", "--build", str(BUILD), "-j", str(min(4, os.cpu_count() or 1))]):
        run = subprocess.run(command, env=env, capture_output=True, text=True)
        assert run.returncode == 0, f"{' '.join(command)} failed:\n{run.stdout[-4000:]}\n{run.stderr[-4000:]}"
    return BUILD


@pytest.mark.parametrize("target", TARGETS)
def test_fuzz_target_passes_its_corpus(fuzz_targets, target, tmp_path):
    inputs = sorted(str(p) for p in (FUZZ / "corpus" / target).iterdir() if p.is_file())
    assert inputs, f"{FUZZ / 'corpus' / target} is empty"
    # files as arguments: each is executed once (no fuzzing); a finding exits non-zero with a report
    run = subprocess.run([str(fuzz_targets / f"fuzz_{target}"), f"-artifact_prefix={tmp_path}/", *inputs],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert run.returncode == 0, f"fuzz_{target} failed on its corpus:\n{run.stderr[-6000:]}"
    assert f"Executed {inputs[-1]}" in run.stderr
