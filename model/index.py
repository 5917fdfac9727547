"""A run's retrieval index (RUN/index/, :mod:`model.retrieval`): building it and refining precomputed outputs.

* ``build_index``: ``pigeon index``; embeds a dataset split with the run's model, then writes the index.
* ``index_from_embeddings``: writes RUN/index/ from view-fused embeddings already at hand (``pigeon train``).
* ``refine_predictions``: refined guesses for precomputed embeddings and head logits (evaluation, ablation).

The :class:`model.inference.Predictor` loads RUN/index/ itself and refines as it predicts.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from model.guess import softmax
from model.views import RETRIEVAL_FUSION, fuse_views

INDEX_DIR = "index"


def embed_dataset_locations(predictor, ds, locs, batch_size: int = 32, progress=None) -> np.ndarray:
    """Per-view token-mean embeddings (N, V, D) float32 of dataset locations (in ``locs`` order), computed by a
    :class:`model.inference.Predictor` exactly as it embeds a round; callers fuse them (the head with the run's
    fusion, the retrieval index with :data:`model.views.RETRIEVAL_FUSION`)."""
    import torch

    from model.inference import load_image
    from model.network import autocast

    out = []
    for start in range(0, len(locs), batch_size):
        chunk = locs[start:start + batch_size]
        x = torch.stack([torch.stack([predictor.model.preprocess(load_image(p)) for p in ds.image_paths(l.id)])
                         for l in chunk]).to(predictor.device)
        with torch.inference_mode(), autocast(predictor.device):
            out.append(predictor.model.embed(x).float().cpu().numpy())
        if progress is not None:
            progress(min(start + batch_size, len(locs)), len(locs))
    return np.concatenate(out).astype(np.float32)


def build_index(run_dir: str | Path, data_dir: str | Path, cfg=None, split: str = "train", batch_size: int = 32,
                device: str = "auto", progress=None) -> Path:
    """Embed ``split`` of the dataset with the run's model and write RUN/index/ (see :mod:`model.retrieval`)."""
    from model.formats.dataset import load_dataset
    from model.inference import Predictor

    pred = Predictor.load(run_dir, device=device, warmup=False)
    ds = load_dataset(data_dir)
    locs = ds.split(split)
    if not locs:
        raise ValueError(f"{data_dir} has no {split!r} locations to index")
    emb = fuse_views(embed_dataset_locations(pred, ds, locs, batch_size, progress), RETRIEVAL_FUSION)
    latlon = np.array([[l.lat, l.lon] for l in locs])
    return index_from_embeddings(run_dir, emb, latlon, cfg, extra={
        "dataset": str(Path(data_dir).resolve()), "dataset_manifest": ds.manifest.get("files", {}), "split": split})


def index_from_embeddings(run_dir: str | Path, emb: np.ndarray, latlon_deg: np.ndarray, cfg=None,
                          extra: dict | None = None) -> Path:
    """Write RUN/index/ from view-fused embeddings (N, D) of the locations to index and their (N, 2)
    coordinates; cells are assigned with the run's geocells. ``pigeon train`` calls this with the embeddings
    it already computed, ``pigeon index`` (:func:`build_index`) after embedding a dataset itself."""
    from model.formats.rundir import MODEL_FILE, read_manifest
    from model.geocells.cells import load_geocells
    from model.retrieval import RefinementIndex, RetrievalConfig

    cells = load_geocells(Path(run_dir) / "geocells")
    extra = {**(extra or {}), "model_sha256": read_manifest(Path(run_dir))["files"][MODEL_FILE]["sha256"]}
    latlon = np.asarray(latlon_deg, dtype=np.float64)
    labels = cells.assign(latlon[:, 0], latlon[:, 1])
    index = RefinementIndex.build(np.asarray(emb, dtype=np.float32), latlon, labels, len(cells.centroids_deg),
                                  cfg or RetrievalConfig())
    return index.save(Path(run_dir) / INDEX_DIR, extra=extra)


def refine_predictions(run_dir: str | Path, embeddings: np.ndarray, logits: np.ndarray,
                       **refine_kwargs) -> np.ndarray:
    """Refined guesses (N, 2) for precomputed view-fused embeddings (N, D) and head logits (N, C).

    Uses RUN/index (build it with ``pigeon index``); evaluation's ``refined`` guess mode and the ablation's
    "full" row call this. ``refine_kwargs`` go to :meth:`model.retrieval.RefinementIndex.refine`.
    """
    from model.geocells.cells import load_geocells
    from model.retrieval import RefinementIndex

    run_dir = Path(run_dir)
    if not (run_dir / INDEX_DIR / "manifest.json").is_file():
        raise FileNotFoundError(f"{run_dir / INDEX_DIR} does not exist: build it with "
                                f"`pigeon index --run {run_dir} --data DATASET`")
    index = RefinementIndex.load(run_dir / INDEX_DIR)
    probs = softmax(logits)
    centroids = load_geocells(run_dir / "geocells").centroids_deg
    out = np.zeros((len(probs), 2))
    for start in range(0, len(probs), 1024):
        sl = slice(start, start + 1024)
        out[sl] = index.refine(np.asarray(embeddings[sl], np.float32), probs[sl], centroids, **refine_kwargs)["latlon"]
    return out
