"""The operator imports the planner: it must not pull in the machine-learning stack."""

from __future__ import annotations

import subprocess
import sys


def test_planner_imports_no_torch_transformers_or_peft():
    code = (
        "import sys, kubetune.planner, kubetune.planner.cli; "
        "heavy = sorted({'torch', 'transformers', 'peft', 'accelerate'} & set(sys.modules)); "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
