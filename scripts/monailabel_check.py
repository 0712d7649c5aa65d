"""Run MONAI Label's own BundleTrainTask and BundleInferTask on a prepared GenSeg bundle.

Needs monailabel installed (``scripts/monailabel_check.sh`` builds an environment with it). The
data is the bundle's embedded demo, in MONAI Label's datastore layout; the demo preset is cut down so
that the check takes minutes on a CPU. Then, unless ``--no-server``, a MONAI Label server on localhost,
as ``docs/monailabel.md`` describes, driven over REST as a client would. It prints one JSON summary and
exits non-zero when a check fails.

    python scripts/monailabel_check.py --bundle skin_lesion2d [--work NEW_FOLDER]
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

QUICK = {  # the demo preset, cut down so that the check takes minutes on a CPU
    "presets#demo#epoch_length": 4,
    "presets#demo#generator_warmup_iterations": 4,
    "presets#demo#syn_rampup_iterations": 0,
    "num_workers": 0,
}


def datastore_layout(work: Path, bundle: str, num_cases: int) -> tuple[Path, str]:
    """The bundle's embedded demo as MONAI Label's local datastore: images in the studies folder, labels
    (values 0..N, as a client saves them) in labels/final/ under the image's name. Returns the folder and
    the file extension."""
    from PIL import Image

    from monai_genseg.data import demo_dataset, load_datalist

    cases = load_datalist(demo_dataset(bundle, seed=0))[:num_cases]
    studies = work / "studies"
    (studies / "labels" / "final").mkdir(parents=True)
    ext = ".nii.gz" if cases[0]["image"].endswith(".nii.gz") else Path(cases[0]["image"]).suffix
    for case in cases:
        name = Path(case["image"]).name
        if ext == ".nii.gz":
            shutil.copy(case["image"], studies / name)
            shutil.copy(case["label"], studies / "labels" / "final" / name)
        else:  # cut to 3/4 of the height, so that a transposed label would show; masks of 0/255 become indices
            picture, mask = np.asarray(Image.open(case["image"])), np.asarray(Image.open(case["label"]))
            rows = picture.shape[0] * 3 // 4
            Image.fromarray(picture[:rows]).save(studies / name)
            label = (mask[:rows] > 0).astype(np.uint8)
            Image.fromarray(label).save(studies / "labels" / "final" / f"{Path(name).stem}.png")
    return studies, ext


def bad_label(label: Path) -> bytes:
    """Replace ``label`` with a bad one (3D: a value no class has; 2D, where any non-zero value of a binary
    mask is foreground: half the image's size); return its good bytes."""
    good = label.read_bytes()
    if label.name.endswith(".nii.gz"):
        img = nib.load(label)
        nib.save(nib.Nifti1Image((np.asarray(img.dataobj) > 0).astype(np.uint8) * 7, img.affine), label)
    else:
        from PIL import Image

        Image.fromarray(np.asarray(Image.open(label))[::2, ::2]).save(label)
    return good


def read_label(path: Path) -> tuple[tuple[int, ...], list[int]]:
    """A written label's shape (NIfTI: as stored; PNG: rows, columns) and values."""
    if str(path).endswith((".nii", ".nii.gz")):
        data = np.asarray(nib.load(path).dataobj)
    else:
        from PIL import Image

        data = np.asarray(Image.open(path))
    return tuple(data.shape), sorted(int(v) for v in np.unique(data))


def image_shape(path: Path) -> tuple[int, ...]:
    """An image's shape as ``read_label`` gives a label's (PNG: rows, columns, without colour)."""
    if str(path).endswith((".nii", ".nii.gz")):
        return tuple(nib.load(path).shape)
    from PIL import Image

    width, height = Image.open(path).size
    return (height, width)


def _http(method: str, url: str, body: dict | None = None, timeout: float = 600) -> bytes:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.read()


def _train_async(base: str, bundle: str, timeout: float = 900) -> dict:
    """POST /train/<bundle> as a client does (in the background), then poll GET /train/ until it ends."""
    _http("POST", f"{base}/train/{bundle}", {"max_epochs": 1, "device": "cpu", "val_split": 0.25})
    deadline = time.time() + timeout
    while time.time() < deadline:
        time.sleep(3)
        task = json.loads(_http("GET", f"{base}/train/"))
        if task.get("status") in ("DONE", "ERROR"):
            return task
    raise RuntimeError(f"training did not end within {timeout} s")


def server_round_trip(work: Path, studies: Path, ext: str, name: str, labels: dict, port: int, checks: dict) -> dict:
    """The documented commands: the monaibundle app, a fresh copy of the bundle (no trained model) in its
    model/ folder, start_server on localhost; then over REST, as a client: /info, /infer, a training with a
    bad label (its message must reach the client), a good training, and /infer of the new weights, with no
    restart."""
    from monai_genseg.monailabel import prepare_bundle

    apps = work / "apps"
    subprocess.run(
        ["monailabel", "apps", "--download", "--name", "monaibundle", "--output", str(apps)],
        check=True,
        capture_output=True,
    )
    copy = prepare_bundle(name, apps / "monaibundle" / "model", scale="demo", overrides=QUICK)
    (studies / "datastore_v2.json").unlink(missing_ok=True)
    log = open(work / "server.log", "w")
    server = subprocess.Popen(
        ["monailabel", "start_server", "--app", str(apps / "monaibundle"), "--studies", str(studies)]
        + ["--conf", "models", name, "--conf", "zoo_source", "github", "--conf", "sam2", "false"]
        + ["--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base, out = f"http://127.0.0.1:{port}", {}
    try:
        for _ in range(90):  # at most three minutes to start
            try:
                info = json.loads(_http("GET", f"{base}/info/", timeout=5))
                break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(2)
        else:
            raise RuntimeError(f"the server did not start; see {work / 'server.log'}")
        out["models"] = {k: v["labels"] for k, v in info["models"].items()}
        checks["server lists the untrained copy with its labels"] = out["models"].get(name) == labels
        image = sorted(p for p in studies.iterdir() if p.name.endswith(ext))[-1]
        case = image.name[: -len(ext)]

        def infer(tag: str) -> tuple:
            target = work / f"server_{tag}{'.nii.gz' if ext == '.nii.gz' else '.png'}"
            target.write_bytes(_http("POST", f"{base}/infer/{name}?image={case}&output=image"))
            return read_label(target)

        shape, values = infer("untrained")
        checks["server /infer answers before any training"] = shape == image_shape(image)

        label = studies / "labels" / "final" / (case + (".nii.gz" if ext == ".nii.gz" else ".png"))
        good = bad_label(label)
        start = time.time()
        task = _train_async(base, name)
        out["bad label: training status"] = task.get("status")
        out["bad label: last lines the client sees"] = list(task.get("details", []))[-3:]
        seen = "\n".join(task.get("details", []))  # the last lines of the task's output, what GET /train/ gives
        checks["a bad label reaches the client as the data check's message"] = (
            task.get("status") == "ERROR" and "DataCheckError" in seen and label.name in seen
        )
        label.write_bytes(good)

        served = copy / "models" / "model.pt"
        before, start = served.read_bytes(), time.time()
        task = _train_async(base, name)
        out["train s"] = round(time.time() - start, 1)
        checks["server /train (in the background) trained models/model.pt"] = (
            task.get("status") == "DONE" and served.read_bytes() != before
        )
        shape, values = infer("trained")
        out["prediction after training"] = {
            "shape": list(shape),
            "image shape": list(image_shape(image)),
            "values": values,
        }
        checks["server /infer serves the new weights in the image's geometry, no restart"] = shape == image_shape(
            image
        ) and set(values) <= {0, *labels.values()}
        out["train_stats.json"] = json.loads((copy / "models" / "train_stats.json").read_text())
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default=None, help="a new scratch folder (default: a fresh temporary one)")
    parser.add_argument("--bundle", default="hippocampus3d", help="any bundle: hippocampus3d, skin_lesion2d, ...")
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
    began = time.time()
    studies, ext = datastore_layout(work, args.bundle, num_cases=8)
    datastore = LocalDatastore(str(studies), extensions=(f"*{ext}",), auto_reload=False)
    bundle = prepare_bundle(args.bundle, work / "model", scale="demo", overrides=QUICK)
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
    model = bundle / "models" / "model.pt"
    untrained = model.read_bytes()
    start = time.time()
    train(dict(request), datastore)
    summary["first training s"] = round(time.time() - start, 1)
    checks["first training replaced the untrained models/model.pt"] = model.read_bytes() != untrained
    first = model.stat().st_mtime

    start = time.time()
    train(dict(request), datastore)  # now with MONAI Label's CheckpointLoader at the front of train#handlers
    summary["second training (from model.pt) s"] = round(time.time() - start, 1)
    checks["second training replaced models/model.pt"] = model.stat().st_mtime != first
    checks["TensorBoard logs written"] = any(True for _ in (bundle / "eval").glob("events.out.tfevents*"))

    infer = BundleInferTask(str(bundle), conf={})
    checks["infer task valid"] = infer.is_valid()
    summary["labels"] = infer.labels
    image = sorted(p for p in studies.iterdir() if p.name.endswith(ext))[0]
    start = time.time()
    label_file, _ = infer({"image": str(image), "device": "cpu"})
    summary["inference s"] = round(time.time() - start, 1)
    shape, values = read_label(Path(label_file))
    summary["prediction"] = {
        "file": Path(label_file).name,
        "shape": list(shape),
        "image shape": list(image_shape(image)),
    }
    summary["prediction"]["values"] = values
    checks["prediction in the image's grid"] = shape == image_shape(image)
    if ext == ".nii.gz":
        checks["prediction in the image's grid"] &= np.allclose(
            nib.load(label_file).affine, nib.load(image).affine, atol=1e-3
        )
    checks["prediction values are labels"] = set(values) <= {0, *infer.labels.values()}
    if args.server:
        summary["server"] = server_round_trip(work, studies, ext, args.bundle, infer.labels, args.port, checks)
    summary["seconds"] = round(time.time() - began)
    summary["checks"] = checks
    print(json.dumps(summary, indent=2))
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
