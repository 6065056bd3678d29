"""benchmarks/speed.py times the estimator's default network against a plain loop."""

import re
import subprocess
import sys
from pathlib import Path

SPEED = Path(__file__).resolve().parents[1] / "benchmarks" / "speed.py"


def test_both_loops_train_the_default_network():
    result = subprocess.run(
        [sys.executable, str(SPEED), "--dataset", "iris", "--epochs", "1"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=SPEED.parent,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    skorch, hand = map(
        int,
        re.search(
            r"parameters=(\d+) \(skorch\) (\d+) \(hand\)", result.stdout
        ).groups(),
    )
    # Iris' 4 features through d-500-500-2000-10 and back: the script times
    # the d-500-500-2000 network its docstring names, not one sized for the
    # 100 samples it builds the net on.
    encoder = 4 * 500 + 500 + 500 * 500 + 500 + 500 * 2000 + 2000 + 2000 * 10 + 10
    decoder = 10 * 2000 + 2000 + 2000 * 500 + 500 + 500 * 500 + 500 + 500 * 4 + 4
    assert skorch == hand == encoder + decoder
    assert re.search(r"ratio skorch/hand = \d+\.\d+", result.stdout)
