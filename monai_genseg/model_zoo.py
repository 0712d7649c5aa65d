"""Package a trained bundle the way a MONAI model-zoo pull request holds it.

The zoo keeps files over 25 MB out of its repository. Such files are uploaded elsewhere and listed
in the bundle's ``large_files.yml`` with a URL and an md5 hash. ``python -m monai.bundle
download_large_files`` then fetches them and checks the hash. ``python -m monai_genseg.model_zoo``
prints each bundle's weight size per preset: the full-size (``gpu``) ones all take that route.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from monai_genseg.atomic import atomic_copy, atomic_write_text, md5sum
from monai_genseg.bundle import RECIPES, STANDARD, Inference, ModelZoo, compose, get_recipe, write

ZOO_FILE_LIMIT = (
    25_000_000  # bytes: the zoo's "no larger than 25MB", read strictly; larger files go through large_files.yml
)


def package_for_zoo(
    name: str,
    dest: str | os.PathLike,
    model: str | os.PathLike,
    scale: str = "gpu",
    url_base: str | None = None,
    extra_models: tuple[str | os.PathLike, ...] = (),
    limit: int = ZOO_FILE_LIMIT,
    overwrite: bool = False,
) -> Path:
    """Write ``dest/<name>`` for the zoo: the bundle's files with ``scale`` fixed, and its weights.

    Args:
        name: a bundle (``monai-genseg bundles`` lists them).
        dest: where to write the package.
        model: the trained ``models/model.pt`` (the segmenter's state dict) of that bundle and scale.
        scale: the preset ``model`` was trained with.
        url_base: where files over ``limit`` will be uploaded; each is listed in ``large_files.yml`` as
            ``<url_base>/<file name>`` with its md5 hash, and left out of the package.
        extra_models: more files for ``models/``, e.g. the TorchScript ``model.ts`` from ``monai-genseg export``.
        limit: the size in bytes above which a file goes through ``large_files.yml``.
        overwrite: rewrite an existing ``dest/<name>``: its configs and docs, and its ``models/`` and
            ``large_files.yml`` replaced by what this call packages.
    """
    files = [Path(model), *map(Path, extra_models)]
    for f in files:
        if not f.is_file():
            raise FileNotFoundError(f"{f}: no such model file to package.")
    large = [f for f in files if f.stat().st_size > limit]
    if large and not url_base:
        sizes = ", ".join(f"{f} ({f.stat().st_size / 1e6:.1f} MB)" for f in large)
        raise ValueError(
            f"{sizes}: over the zoo's {limit / 1e6:g} MB limit; pass url_base, the address they will be uploaded to"
        )
    target = write(compose(get_recipe(name), *STANDARD, ModelZoo(), scale=scale), dest, overwrite=overwrite)
    # a package is what this call puts in it: weights and large_files.yml of an earlier packaging go
    for stale in [*(target / "models").glob("*"), target / "large_files.yml"]:
        if stale.is_file():
            stale.unlink()
    entries = []
    for f in files:
        rel = f"models/{'model.pt' if f == Path(model) else f.name}"
        if f in large:
            entries.append(
                {"path": rel, "url": f"{url_base.rstrip('/')}/{f.name}", "hash_val": md5sum(f), "hash_type": "md5"}
            )
        else:
            atomic_copy(f, target / rel)
    if entries:
        atomic_write_text(target / "large_files.yml", yaml.safe_dump({"large_files": entries}, sort_keys=False))
    return target


def weights_bytes(name: str, scale: str) -> int:
    """Size of ``torch.save(network.state_dict())`` for bundle ``name`` at ``scale``: what models/model.pt will
    weigh."""
    import io

    import torch
    from monai.bundle import ConfigParser

    parser = ConfigParser(compose(get_recipe(name), Inference(), scale=scale).configs["inference"])
    buffer = io.BytesIO()
    torch.save(parser.get_parsed_content("network_def").state_dict(), buffer)
    return buffer.getbuffer().nbytes


if __name__ == "__main__":  # python -m monai_genseg.model_zoo: which bundles need large_files.yml
    print(f"{'bundle':<18} {'cpu MB':>7} {'gpu MB':>7}  over {ZOO_FILE_LIMIT / 1e6:g} MB at gpu")
    for bundle in sorted(RECIPES):
        cpu, gpu = (weights_bytes(bundle, s) for s in ("cpu", "gpu"))
        print(f"{bundle:<18} {cpu / 1e6:7.1f} {gpu / 1e6:7.1f}  {'yes' if gpu > ZOO_FILE_LIMIT else 'no'}")
