"""The package works from a wheel, outside the checkout: ``init`` writes a bundle, it trains, ``synthesize``
and ``export`` run. Nothing may read the repository's ``bundles/`` through ``__file__``.

The wheel is built without build isolation (setuptools comes with the test extra), and installed into a
fresh virtual environment that borrows this environment's dependencies through a path entry (not its
``.pth`` files, so the editable install of this checkout stays invisible). Nothing is downloaded.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TINY = [
    "--presets#demo#patch_size",
    "[32,32]",
    "--presets#demo#batch_size",
    "2",
    "--presets#demo#epoch_length",
    "2",
    "--presets#demo#max_epochs",
    "1",
    "--presets#demo#generator_warmup_iterations",
    "2",
    "--presets#demo#syn_rampup_iterations",
    "0",
    "--num_labeled",
    "3",
    "--num_val",
    "1",
    "--num_workers",
    "0",
]


def _run(cmd: list[str], cwd: Path, env: dict) -> str:
    proc = subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, encoding="utf-8", errors="replace", timeout=900
    )
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


@pytest.fixture(scope="module")
def wheel_env(tmp_path_factory) -> tuple[Path, dict]:
    pytest.importorskip("setuptools", minversion="77")
    root = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--quiet",
            "-w",
            str(root / "dist"),
            str(REPO),
        ],
        check=True,
        capture_output=True,
        timeout=600,
    )
    wheel = next((root / "dist").glob("monai_genseg-*.whl"))
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=300)
    bin_dir = venv / ("Scripts" if os.name == "nt" else "bin")
    python = bin_dir / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # this environment's packages (torch, monai, ...) as a plain path entry, after the new venv's own
    Path(site, "borrowed_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--quiet", str(wheel)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", MONAI_GENSEG_CACHE=str(root / "cache"))
    return root, env


def test_installed_wheel_inits_trains_and_synthesizes(wheel_env):
    root, env = wheel_env
    work = root / "work"
    work.mkdir()
    where = _run(["python", "-c", "import monai_genseg; print(monai_genseg.__file__)"], work, env)
    assert str(REPO) not in where and "site-packages" in where, where  # the wheel, not this checkout

    assert "wrote" in _run(["monai-genseg", "init", "skin_lesion2d", "mine"], work, env)
    bundle = work / "mine" / "skin_lesion2d"
    assert (bundle / "configs" / "train.yaml").is_file() and (bundle / "LICENSE").read_text().startswith(
        (REPO / "LICENSE").read_text()[:200]
    )

    # the bundle keeps its outputs beside its configs, whatever the working directory
    _run(
        ["python", "-m", "monai.bundle", "run", "--config_file", "mine/skin_lesion2d/configs/train.yaml", *TINY],
        work,
        env,
    )
    checkpoint = bundle / "models" / "genseg_checkpoint.pt"
    assert checkpoint.is_file() and (bundle / "models" / "model.pt").is_file()

    masks = (
        Path(
            _run(
                ["monai-genseg", "demo-data", "skin_lesion2d", "--output_dir", str(root / "demo"), "--num_cases", "2"],
                work,
                env,
            ).strip()
        )
        / "masks"
    )
    out = _run(
        ["monai-genseg", "synthesize", "skin_lesion2d", str(checkpoint), str(masks), str(root / "syn"), "--num", "1"],
        work,
        env,
    )
    assert "2 pairs written" in out and len(list((root / "syn").glob("*_image.png"))) == 2
    _run(["monai-genseg", "export", "skin_lesion2d", "--bundle_root", str(bundle)], work, env)
    assert (bundle / "models" / "model.ts").is_file()
