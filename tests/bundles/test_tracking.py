"""MONAI's `--tracking mlflow` on a GenSeg bundle: the run, its metrics and its config reach MLflow."""

from __future__ import annotations

import pytest

from .test_liver3d import TINY, run_bundle

mlflow = pytest.importorskip("mlflow", reason="install monai-genseg[mlflow]")


def test_tracking_mlflow_records_losses_dice_and_config(tmp_path, dataset):
    from mlflow.tracking import MlflowClient
    from monai.utils import path_to_sqlite_uri

    root = tmp_path / "bundle"
    run_bundle(["train.yaml"], cwd=tmp_path, bundle_root=str(root), dataset_dir=str(dataset), tracking="mlflow", **TINY)

    client = MlflowClient(tracking_uri=path_to_sqlite_uri(str(root / "eval" / "mlruns.db")))  # MONAI's default store
    runs = [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    run = runs[0]
    losses = client.get_metric_history(run.info.run_id, "train_loss")
    assert len(losses) == TINY["presets#demo#epoch_length"] * TINY["presets#demo#max_epochs"]  # one per iteration
    assert all(0 < m.value < 10 for m in losses)
    assert 0 <= run.data.metrics["val_mean_dice"] <= 1
    assert [a.path for a in client.list_artifacts(run.info.run_id)][0].startswith("config_")
