"""A pigeon dataset folder as arrays: the location table, views decoded to uint8, captioned single views.

Images are decoded with PIL and preprocessed by ``model.network.image_tensor`` (resize shortest side, centre
crop, CLIP normalisation), the same function inference uses.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from model.formats.dataset import Dataset
from model.network import image_tensor
from model.views import resize_view
from train.captions import CaptionInfo, sample_caption


@dataclass
class LocationTable:
    """Dataset rows as arrays: ids (N,), latlon_deg (N, 2), split (N,), aux (N,) dicts of the extra
    columns."""

    ids: list[str]
    latlon_deg: np.ndarray
    split: np.ndarray
    aux: list[dict[str, str]]

    @classmethod
    def from_dataset(cls, ds: Dataset) -> LocationTable:
        locs = ds.locations
        return cls(
            [l.id for l in locs],
            np.array([[l.lat, l.lon] for l in locs], dtype=np.float64).reshape(-1, 2),
            np.array([l.split for l in locs]),
            [dict(l.aux) for l in locs],
        )

    def __len__(self) -> int:
        return len(self.ids)

    def indices(self, split: str) -> np.ndarray:
        return np.flatnonzero(self.split == split)

    def subset(self, idx: np.ndarray) -> LocationTable:
        idx = np.asarray(idx)
        return LocationTable([self.ids[i] for i in idx], self.latlon_deg[idx], self.split[idx],
                             [self.aux[i] for i in idx])

    def column(self, name: str) -> np.ndarray:
        return np.array([(a.get(name) or "").strip() for a in self.aux], dtype=object)


def _image_path(ds: Dataset, loc_id: str, view: int):
    path = ds.image_path(loc_id, view)
    if not path.is_file():
        raise FileNotFoundError(f"image {path} is missing (location {loc_id}, view {view})")
    return path


def load_image(ds: Dataset, loc_id: str, view: int, size: int, mean, std) -> torch.Tensor:
    with Image.open(_image_path(ds, loc_id, view)) as img:
        return image_tensor(img, size, mean, std)


def decode_views(ds: Dataset, table: LocationTable, indices: np.ndarray, views: list[int], size: int,
                 threads: int = 2) -> np.ndarray:
    """uint8 pixels (N, V, size, size, 3) of the given locations' views, resized by ``model.views.resize_view``
    (the rule inference uses); :func:`model.network.normalize_uint8` turns them into the model's input."""
    out = np.empty((len(indices), len(views), size, size, 3), dtype=np.uint8)

    def one(k: int) -> None:
        loc = table.ids[int(indices[k])]
        for j, v in enumerate(views):
            with Image.open(_image_path(ds, loc, v)) as img:
                out[k, j] = np.asarray(resize_view(img, size))

    with ThreadPoolExecutor(max(1, threads)) as pool:  # PIL releases the GIL while decoding and resizing
        list(pool.map(one, range(len(indices))))
    return out


class CaptionedViews(torch.utils.data.Dataset):
    """Pretraining samples: item k of ``samples`` (M, 2) = (location index, view position) -> (image, tokens).

    The caption of item k is drawn from ``np.random.default_rng((seed, epoch, k))``, so a given (epoch, k)
    always gets the same caption whatever the rank, worker or resume point.
    """

    def __init__(self, ds: Dataset, table: LocationTable, samples: np.ndarray, infos: list[CaptionInfo],
                 size: int, mean, std, tokenizer, seed: int, epoch: int, aux: bool):
        self.ds, self.table, self.samples, self.infos = ds, table, samples, infos
        self.views = ds.views
        self.size, self.mean, self.std, self.tokenizer = size, mean, std, tokenizer
        self.seed, self.epoch, self.aux = seed, epoch, aux

    def __len__(self) -> int:
        return len(self.samples)

    def caption(self, k: int) -> str:
        loc, vpos = (int(x) for x in self.samples[k])
        rng = np.random.default_rng((self.seed, self.epoch, k))
        return sample_caption(rng, self.infos[loc], self.views[vpos], self.aux)

    def __getitem__(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        loc, vpos = (int(x) for x in self.samples[k])
        img = load_image(self.ds, self.table.ids[loc], self.views[vpos], self.size, self.mean, self.std)
        return img, self.tokenizer([self.caption(k)])[0]


def epoch_samples(locations: np.ndarray, n_views: int, mode: str, seed: int, epoch: int) -> np.ndarray:
    """Shuffled (location index, view position) pairs (M, 2) for one pretraining epoch.

    ``mode='all'``: every view of every location; ``'one'``: one random view per location.
    """
    rng = np.random.default_rng((seed, epoch, 7919))
    locations = np.asarray(locations, dtype=np.int64)
    if mode == "all":
        pairs = np.stack(np.meshgrid(locations, np.arange(n_views), indexing="ij"), -1).reshape(-1, 2)
    elif mode == "one":
        pairs = np.c_[locations, rng.integers(0, n_views, len(locations))]
    else:
        raise ValueError(f"pretrain.views must be 'all' or 'one', got {mode!r}")
    return pairs[rng.permutation(len(pairs))]
