"""The committed generated code and test vectors are up to date."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

PB2 = Path("clients/python/src/hiscore/_proto/hiscore_pb2.py")


def test_pb2_is_fresh(tmp_path: Path) -> None:
    if shutil.which("protoc") is None or shutil.which("protoc-c") is None:
        pytest.skip("protoc / protoc-c not installed (scripts/install-deps.sh)")
    subprocess.run([str(REPO / "scripts" / "gen-proto.sh")], check=True, timeout=120,
                   env={**os.environ, "OUT_ROOT": str(tmp_path)})
    fresh = (tmp_path / PB2).read_bytes()
    committed = (REPO / PB2).read_bytes()
    assert fresh == committed, f"{PB2} is stale: run make proto"


def test_vectors_are_fresh() -> None:
    gen = REPO / "clients" / "testdata" / "gen_vectors.py"
    res = subprocess.run([sys.executable, str(gen), "--check"], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, ("clients/testdata/vectors.* are stale: run "
                                 f"python3 clients/testdata/gen_vectors.py\n{res.stderr}")
