"""How a location's views become one embedding, and how a view image becomes the model's input.

The invariant that keeps training and inference identical: every place that turns per-view embeddings into a
location embedding (``GeoModel.forward``, the Predictor, the index builder, evaluation, training) calls
:func:`fuse_views` with the run's ``fusion``, and every place that turns an image into model input (training,
evaluation, ``pigeon predict``, the bot's captures at any resolution) resizes it with :func:`resize_view`.
Torch-free: fusion works on torch tensors and numpy arrays alike.
"""
from __future__ import annotations

from typing import Any, Literal, TypeVar, get_args

Array = TypeVar("Array")  # a torch.Tensor or a numpy.ndarray
Fusion = Literal["mean", "concat"]
FUSIONS: tuple[str, ...] = get_args(Fusion)


RETRIEVAL_FUSION = "mean"
"""How the retrieval index (``model.index``, ``model.retrieval``) and its queries fuse a location's views, whatever
the head's fusion: similarity between places does not need the view order, and the mean keeps the index a
quarter of a concatenation's size (8,676 locations x 512 floats instead of x 2,048 for the demo)."""


def fused_dim(embed_dim: int, fusion: str, n_views: int) -> int:
    """Width of the fused embedding: ``embed_dim`` for the mean, ``n_views * embed_dim`` for concatenation."""
    return embed_dim * n_views if fusion == "concat" else embed_dim


def fuse_views(emb: Array, fusion: str = "mean") -> Array:
    """Per-view embeddings (N, V, D) -> one embedding per location.

    ``mean`` (PIGEON, docs/method.md §2.6): the mean over the V views (axis 1) -> (N, D); V may be anything, so it
    also serves unordered inputs and single photos. ``concat``: the views concatenated in the order given, which
    must be heading order (0/90/180/270 of the synthetic world, the arena and the bot's own captures) -> (N, V*D);
    a head trained on it knows which view faces the road ahead. Same type and dtype as the input.
    """
    if fusion == "mean":
        return emb.mean(1)
    if fusion == "concat":
        return emb.reshape(emb.shape[0], -1)
    raise ValueError(f"unknown view fusion {fusion!r}; known: {', '.join(FUSIONS)}")


def resize_view(img: Any, size: int) -> Any:
    """PIL image of any size -> RGB PIL image ``size`` x ``size``: the shortest side scaled to ``size`` (bicubic),
    then a centre crop. A 128, 256 or 512 px capture of one place gives (nearly) the same model input."""
    from PIL import Image

    img = img.convert("RGB")
    w, h = img.size
    scale = size / min(w, h)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    if (nw, nh) != (w, h):
        img = img.resize((nw, nh), Image.Resampling.BICUBIC)  # antialiased: PIL widens the filter when shrinking
    left, top = (nw - size) // 2, (nh - size) // 2
    return img.crop((left, top, left + size, top + size))
