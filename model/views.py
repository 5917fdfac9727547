"""How a location's views become one embedding: the invariant that keeps training and inference identical.

Torch-free: :func:`fuse_views` works on torch tensors and numpy arrays alike, so the model
(``GeoModel.forward``), the Predictor, the index builder, evaluation and training all fuse views by calling
this one function.
"""
from __future__ import annotations

from typing import TypeVar

Array = TypeVar("Array")  # a torch.Tensor or a numpy.ndarray


def fuse_views(emb: Array) -> Array:
    """Per-view embeddings (N, V, D) -> one embedding per location (N, D): the mean over the V views (axis 1).

    V may be 1 (a single photo, or a run trained on view 0 only): the result is then that view's embedding.
    Same type and dtype as the input (``emb.mean(1)`` on a torch tensor or a numpy array).
    """
    return emb.mean(1)
