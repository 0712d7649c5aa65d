"""The precision benchmark measures what the plan chooses from: both widths, both precisions, and says where."""

from __future__ import annotations

import importlib.util
from pathlib import Path

PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "cpu_precision.py"
spec = importlib.util.spec_from_file_location("cpu_precision", PATH)
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


def test_it_times_both_widths_in_both_precisions_and_prints_the_command_and_machine(monkeypatch, capsys):
    tiny = {"skin_lesion2d": ((32, 32), 2, 3, 3, 2)}  # the ISIC bundle's recipe at 32x32
    rows = bench.measure(tiny, steps=1)
    assert [(name, base) for name, base, _, _ in rows] == [("skin_lesion2d", 16), ("skin_lesion2d", 32)]
    assert all(single > 0 and half > 0 for _, _, single, half in rows)
    monkeypatch.setattr(bench, "CASES", tiny)
    bench.main(["--steps", "1", "--cases", "skin_lesion2d"])
    out = capsys.readouterr().out
    assert out.startswith("command: python benchmarks/cpu_precision.py --steps 1") and "CPU flags:" in out
    assert "| skin_lesion2d, 32-wide |" in out and "seed 0" in out
