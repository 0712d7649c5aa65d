"""Run MONAI Label's own BundleTrainTask and BundleInferTask on a prepared GenSeg bundle.

Needs monailabel installed (``scripts/monailabel_check.sh`` builds an environment with it). The
data is the embedded liver demo, in MONAI Label's datastore layout; the presets are cut down so
that the check takes minutes on a CPU. Then, unless ``--no-server``, the same through a MONAI Label
server on localhost, as ``docs/monailabel.md`` describes. It prints one JSON summary and exits
non-zero when a check fails.

    python scripts/monailabel_check.py [--work NEW_FOLDER]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import nibabel as nib
import numpy as np

QUICK = {
    "presets#cpu#epoch_length": 4,
    "presets#cpu#generator_warmup_iterations": 4,
    "presets#cpu#syn_rampup_iterations": 0,
    "presets#cpu#patch_size": [32, 32, 32],
    "num_workers": 0,
}


def datastore_layout(work: Path, num_cases: int) -> Path:
    """The liver demo as MONAI Label's local datastore: images in the studies folder, masks in labels/final/."""
    from monai_genseg.data import write_liver_demo

    demo = write_liver_demo(work / "demo", num_cases=num_cases, seed=0, shape=(48, 40, 32), spacing=(8.0, 8.0, 5.0))
    studies = work / "studies"
    (studies / "labels" / "final").mkdir(parents=True)
    for case in json.loads((demo / "dataset.json").read_text())["training"]:
        shutil.copy(demo / case["image"], studies / Path(case["image"]).name)
        shutil.copy(demo / case["label"], studies / "labels" / "final" / Path(case["image"]).name)
    return studies


def _http(method: str, url: str, body: dict | None = None, timeout: float = 600) -> bytes:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.read()


def server_round_trip(work: Path, studies: Path, trained: Path, model: Path, port: int, checks: dict) -> dict:
    """The documented commands: the monaibundle app, the bundle in its model/ folder, start_server on
    localhost, then /info, /infer and a synchronous /train over REST."""
    from monai_genseg.monailabel import prepare_bundle

    apps = work / "apps"
    subprocess.run(
        ["monailabel", "apps", "--download", "--name", "monaibundle", "--output", str(apps)],
        check=True,
        capture_output=True,
    )
    prepare_bundle(trained.name, apps / "monaibundle" / "model", scale="cpu", model=model, overrides=QUICK)
    (studies / "datastore_v2.json").unlink(missing_ok=True)
    log = open(work / "server.log", "w")
    server = subprocess.Popen(
        [
            "monailabel",
            "start_server",
            "--app",
            str(apps / "monaibundle"),
            "--studies",
            str(studies),
            "--conf",
            "models",
            trained.name,
            "--conf",
            "zoo_source",
            "github",
            "--conf",
            "sam2",
            "false",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base, out = f"http://127.0.0.1:{port}", {}
    try:
        for _ in range(60):  # at most two minutes to start
            try:
                info = json.loads(_http("GET", f"{base}/info/", timeout=5))
                break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(2)
        else:
            raise RuntimeError(f"the server did not start; see {work / 'server.log'}")
        out["models"] = {k: v["labels"] for k, v in info["models"].items()}
        checks["server lists the bundle with its labels"] = out["models"].get(trained.name) == {"liver": 1, "tumour": 2}
        image = sorted(studies.glob("*.nii.gz"))[-1]
        case = image.name[: -len(".nii.gz")]
        (work / "server_pred.nii.gz").write_bytes(
            _http("POST", f"{base}/infer/{trained.name}?image={case}&output=image")
        )
        pred = nib.load(work / "server_pred.nii.gz")
        checks["server /infer returns labels in the image's grid"] = pred.shape == nib.load(image).shape
        served = apps / "monaibundle" / "model" / trained.name / "models" / "model.pt"
        before, start = served.read_bytes(), time.time()
        _http(
            "POST", f"{base}/train/{trained.name}?run_sync=true", {"max_epochs": 1, "device": "cpu", "val_split": 0.25}
        )
        out["train s"] = round(time.time() - start, 1)
        checks["server /train retrained models/model.pt"] = served.read_bytes() != before
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default=None, help="a new scratch folder (default: a fresh temporary one)")
    parser.add_argument("--bundle", default="liver3d")
    parser.add_argument(
        "--server", action=argparse.BooleanOptionalAction, default=True, help="also start a server on localhost"
    )
    parser.add_argument("--port", type=int, default=8123)
    args = parser.parse_args()

    import monailabel
    from monailabel.datastore.local import LocalDatastore
    from monailabel.tasks.infer.bundle import BundleInferTask
    from monailabel.tasks.train.bundle import BundleTrainTask

    from monai_genseg.monailabel import prepare_bundle

    work = Path(args.work or tempfile.mkdtemp(prefix="monailabel_check_"))
    if work.exists() and any(work.iterdir()):
        parser.error(f"{work} is not empty; give a new folder (nothing of yours is overwritten)")
    work.mkdir(parents=True, exist_ok=True)
    studies = datastore_layout(work, num_cases=8)
    datastore = LocalDatastore(str(studies), extensions=("*.nii.gz",), auto_reload=False)
    bundle = prepare_bundle(args.bundle, work / "model", scale="cpu", overrides=QUICK)
    summary: dict = {"monailabel": monailabel.__version__, "bundle": str(bundle), "cases": len(datastore.datalist())}
    checks: dict[str, bool] = {}

    request = {
        "model": args.bundle,
        "max_epochs": 2,
        "device": "cpu",
        "val_split": 0.25,
        "multi_gpu": False,
        "pretrained": True,
    }
    train = BundleTrainTask(str(bundle), conf={})
    checks["train task valid"] = train.is_valid()
    start = time.time()
    train(dict(request), datastore)
    summary["first training s"] = round(time.time() - start, 1)
    model = bundle / "models" / "model.pt"
    checks["first training wrote models/model.pt"] = model.is_file()
    first = model.stat().st_mtime if model.is_file() else None

    start = time.time()
    train(dict(request), datastore)  # now with MONAI Label's CheckpointLoader at the front of train#handlers
    summary["second training (from model.pt) s"] = round(time.time() - start, 1)
    checks["second training replaced models/model.pt"] = model.is_file() and model.stat().st_mtime != first
    log = (bundle / "eval").glob("events.out.tfevents*")
    checks["TensorBoard logs written"] = any(True for _ in log)

    infer = BundleInferTask(str(bundle), conf={})
    checks["infer task valid"] = infer.is_valid()
    summary["labels"] = infer.labels
    image = sorted(studies.glob("*.nii.gz"))[0]
    start = time.time()
    label_file, result = infer({"image": str(image), "device": "cpu"})
    summary["inference s"] = round(time.time() - start, 1)
    pred, ref = nib.load(label_file), nib.load(image)
    values = sorted(int(v) for v in np.unique(np.asarray(pred.dataobj)))
    summary["prediction"] = {"shape": list(pred.shape), "image shape": list(ref.shape), "values": values}
    checks["prediction in the image's grid"] = pred.shape == ref.shape and np.allclose(
        pred.affine, ref.affine, atol=1e-3
    )
    checks["prediction values are labels"] = set(values) <= {0, *infer.labels.values()}
    if args.server:
        summary["server"] = server_round_trip(work, studies, bundle, model, args.port, checks)
    summary["checks"] = checks
    print(json.dumps(summary, indent=2))
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
