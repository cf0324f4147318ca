"""The load test itself stays runnable: a tiny bounded run, zero errors, nothing lost."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_load_test_runs_bounded_with_zero_errors(tmp_path: Path) -> None:
    out = tmp_path / "load.json"
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "load_server.py"),
            "--clients",
            "4",
            "--seconds",
            "0.5",
            "--max-requests",
            "40",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(out.read_text())
    assert [(r["op"], r["errors"]) for r in result["rows"]] == [
        ("create", 0),
        ("get", 0),
        ("encrypt", 0),
    ]
    assert all(0 < r["ok"] <= 40 for r in result["rows"])
    assert result["lost"]["missing"] == 0
    assert result["lost"]["decrypt_wrong"] == 0
