"""Backbones by name, PIGEON's token-mean image embedding, the geocell head, and the run loader.

* ``BACKBONES`` maps a short name to an open_clip architecture (+ default pretrained tag, native image size);
  ``list_backbones()`` lists them. ``build_clip`` makes the full two-tower model (and its tokenizer) for
  pretraining, ``clip_loss`` its contrastive loss. This is the only module that imports open_clip (through the
  torchvision shim); ``OPEN_CLIP_VERSION`` is recorded in run manifests.
* ``token_mean``: the mean over *all* output tokens (CLS included) of the last transformer block of the visual
  tower, before ``ln_post`` and the projection (docs/method.md §2.5; open_clip's own token output comes after
  ``ln_post``, so the last block's output is averaged instead).
* ``GeoHead``: linear geocell classifier plus PIGEON's auxiliary heads; ``GeoModel`` = visual tower + head
  with the views fused by ``model.views.fuse_views``.
* ``load_run(run_dir, device)`` rebuilds a ``GeoModel`` from a run directory (see ``model.formats.rundir``), checking
  hashes, backbone and shapes.
"""
from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

# the shim must run before open_clip imports torchvision (see model/_tvshim.py)
from model import _tvshim  # noqa: F401

# isort: split
import open_clip
import torch
from torch import nn

from model.formats import rundir
from model.views import FUSIONS, fuse_views, fused_dim, resize_view
from model.formats.manifest import FormatError

CONFIG_DIR = Path(__file__).with_name("model_configs")
open_clip.add_model_config(CONFIG_DIR)
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
OPEN_CLIP_VERSION: str = open_clip.__version__
# token_mean feeds a convolutional tower channels-last (NHWC) input on CPU, where oneDNN's convolutions run faster
# on it (benchmarks/bench_train.py: encoder_step against encoder_step_nchw); results differ by float rounding only.
# A switch for that benchmark's A/B, not a setting
CPU_CHANNELS_LAST = True
NUM_MONTHS = 12


@dataclass(frozen=True)
class BackboneSpec:
    """An open_clip architecture under a short name. ``width`` = token width = embedding dim of
    ``token_mean``."""

    arch: str
    default_pretrained: str | None
    image_size: int
    width: int
    quick_gelu: bool  # OpenAI CLIP weights were trained with QuickGELU; our from-scratch towers use nn.GELU
    note: str
    # the ResNet's stem: "clip" = open_clip's ModifiedResNet as it is (three 3x3 convolutions: stride 2 to
    # width/2, width/2, width, each with batch norm, then a 2x2 average pool); "one-conv" = one stride-2 3x3
    # convolution straight to ``width`` channels with its batch norm, then the same pool (``_one_conv_stem``)
    stem: str = "clip"


BACKBONES: dict[str, BackboneSpec] = {
    "tiny-vit": BackboneSpec("tiny-vit", None, 128, 160, False,
                             "6x160 ViT/16 + 2-layer text tower, random init; CPU demo and tests"),
    "tiny-resnet": BackboneSpec("tiny-resnet", None, 64, 512, False,
                                "open_clip ModifiedResNet [1,1,1,1] x 16 at 64 px + 2-layer text tower, random init; "
                                "learns from scratch on 2 CPU cores"),
    "tiny-resnet-1conv": BackboneSpec("tiny-resnet", None, 64, 512, False,
                                      "tiny-resnet with a one-convolution stem (3 -> 16 channels, stride 2): the same "
                                      "output shapes, 1.3-1.6x the training images/s on 2 CPU cores",
                                      stem="one-conv"),
    "ViT-B-32": BackboneSpec("ViT-B-32", "openai", 224, 768, True, "CLIP ViT-B/32"),
    "ViT-L-14-336": BackboneSpec("ViT-L-14-336", "openai", 336, 1024, True, "CLIP ViT-L/14@336 as PIGEON"),
}


STEMS = ("clip", "one-conv")


def _one_conv_stem(visual: nn.Module) -> nn.Module:
    """Cut an open_clip ModifiedResNet's stem to one stride-2 3x3 convolution from RGB straight to the stem's
    output width, with its batch norm and ReLU, then the same 2x2 average pool: the same output shape as the
    three-convolution stem (so ``layer1``.. and ``token_mean`` are unchanged), with no narrow half-width layers.
    Why: at 64 px on 2 CPU cores the half-width convolutions and their batch norms cost more than they give
    (benchmarks/bench_train.py, ``encoder_step_other_stem``; docs/training.md has the measured build).
    The new convolution is drawn from the global RNG, so the caller seeds it."""
    if not _is_resnet(visual):
        raise TypeError(f"a one-convolution stem needs an open_clip ModifiedResNet, got {type(visual).__name__}")
    width = visual.conv3.out_channels
    visual.conv1 = nn.Conv2d(3, width, kernel_size=3, stride=2, padding=1, bias=False)
    visual.bn1 = nn.BatchNorm2d(width)
    visual.conv2 = visual.bn2 = visual.act2 = nn.Identity()
    visual.conv3 = visual.bn3 = visual.act3 = nn.Identity()
    return visual


def _shape_stem(visual: nn.Module, spec: BackboneSpec) -> nn.Module:
    if spec.stem == "one-conv":
        return _one_conv_stem(visual)
    if spec.stem != "clip":
        raise ValueError(f"unknown stem {spec.stem!r}; known stems: {', '.join(STEMS)}")
    return visual


class BackboneUnavailableError(FileNotFoundError):
    """Pretrained weights were asked for but cannot be found locally (and may not be downloaded)."""


def list_backbones() -> list[str]:
    return list(BACKBONES)


def backbone_spec(name: str) -> BackboneSpec:
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; known backbones: {', '.join(BACKBONES)}")
    return BACKBONES[name]


def _resolve_pretrained(name: str, pretrained: str | None) -> str | None:
    """'' / None -> random init; 'default' -> the registry's tag; otherwise a tag or a local file path."""
    if not pretrained:
        return None
    if pretrained == "default":
        return backbone_spec(name).default_pretrained
    return pretrained


def _looks_like_path(text: str) -> bool:
    return os.sep in text or text.endswith((".pt", ".pth", ".bin", ".safetensors"))


def build_clip(name: str, pretrained: str | None = None, image_size: int | None = None, seed: int = 0
               ) -> tuple[nn.Module, Any]:
    """Full open_clip model (both towers) and its tokenizer.

    ``pretrained``: None/'' (random init, seeded by ``seed`` without touching the global RNG), 'default', an
    open_clip tag such as 'openai' (from the local HF cache; ``HF_HUB_OFFLINE=1`` is respected) or a local
    checkpoint path (.pt/.bin/.safetensors with an open_clip state dict).
    ``image_size`` overrides the native input size (positional embeddings are sized for it).
    """
    spec = backbone_spec(name)
    tag = _resolve_pretrained(name, pretrained)
    if tag and _looks_like_path(tag) and not Path(tag).is_file():
        raise FileNotFoundError(f"pretrained checkpoint {tag} for backbone {name!r} does not exist")
    kwargs = {"force_quick_gelu": spec.quick_gelu, "output_dict": True,
              "force_image_size": image_size if image_size and image_size != spec.image_size else None}
    if tag and spec.stem != "clip" and not _looks_like_path(tag):
        raise BackboneUnavailableError(
            f"backbone {name!r} ({spec.stem} stem) has no published weights such as {tag!r}; set "
            f"backbone.pretrained to a local checkpoint file of it, or leave it empty for random init")
    with torch.random.fork_rng(devices=[]), _quiet_open_clip(random_init=tag is None):
        torch.manual_seed(seed)
        try:
            if spec.stem == "clip":
                model = open_clip.create_model(spec.arch, pretrained=tag, **kwargs)
            else:  # the stem is reshaped before the weights are read, so a checkpoint of this backbone fits
                model = open_clip.create_model(spec.arch, pretrained=None, **kwargs)
                _shape_stem(model.visual, spec)
                if tag:
                    open_clip.load_checkpoint(model, tag)
        except RuntimeError as e:
            if tag and Path(tag).is_file():
                raise ValueError(
                    f"checkpoint {tag} does not fit backbone {name!r} ({spec.arch}): {e}"
                ) from None
            if tag and ("download" in str(e).lower() or "not a known tag" in str(e)):
                offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")
                raise BackboneUnavailableError(
                    f"pretrained weights {tag!r} for backbone {name!r} are not available locally"
                    f"{' and HF_HUB_OFFLINE is set' if offline else ''}; put them in the Hugging Face cache "
                    f"beforehand or set backbone.pretrained to a local checkpoint file") from None
            raise
        tokenizer = open_clip.get_tokenizer(spec.arch)
    return model, tokenizer


def clip_loss(rank: int = 0, world_size: int = 1, distributed: bool = False) -> nn.Module:
    """open_clip's symmetric InfoNCE ``ClipLoss``, called as ``loss(image_features, text_features, logit_scale)``.
    ``distributed``: each rank's features are gathered from all ranks with gradients (``local_loss`` +
    ``gather_with_grad``), so the contrastive batch is the global one."""
    return open_clip.ClipLoss(local_loss=distributed, gather_with_grad=distributed, rank=rank,
                              world_size=world_size)


@contextlib.contextmanager
def _quiet_open_clip(random_init: bool):
    """open_clip logs every creation step on the root logger at INFO (and warns about random init, which is
    intended here); keep those out of the CLI output."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING if random_init else logging.INFO)
    try:
        yield
    finally:
        logging.disable(previous)


def build_visual(name: str, image_size: int | None = None) -> nn.Module:
    """Only the visual tower of ``name`` (random weights), shaped exactly as ``build_clip(...).visual``."""
    from open_clip.model import _build_vision_tower

    spec = backbone_spec(name)
    cfg = copy.deepcopy(open_clip.get_model_config(spec.arch))
    if image_size:
        cfg["vision_cfg"]["image_size"] = image_size
    return _shape_stem(_build_vision_tower(cfg["embed_dim"], cfg["vision_cfg"], quick_gelu=spec.quick_gelu), spec)


def _is_resnet(visual: nn.Module) -> bool:
    return hasattr(visual, "layer4") and hasattr(visual, "attnpool")


def tower_width(visual: nn.Module) -> int:
    """Width of :func:`token_mean`'s embedding: the ViT's token width, or the ResNet's last-stage channels."""
    if _is_resnet(visual):
        return int(visual.attnpool.positional_embedding.shape[1])
    return int(visual.transformer.width)


def tower_image_size(visual: nn.Module) -> int:
    """The tower's square input size in pixels."""
    size = visual.image_size
    return int(size[0] if isinstance(size, (tuple, list)) else size)


def token_mean(visual: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """PIGEON embedding: images (B, 3, H, W) -> (B, width), mean over all tokens of the last block's output.

    ViT: taken before ``ln_post`` and the projection, as the HF ``last_hidden_state`` mean used by PIGEON.
    ResNet (open_clip's ModifiedResNet): the tokens are the last stage's spatial positions, averaged before the
    attention pool; the same definition for a convolutional tower.
    """
    if _is_resnet(visual):
        if CPU_CHANNELS_LAST and images.device.type == "cpu":
            images = images.contiguous(memory_format=torch.channels_last)
        x = visual.stem(images)
        for layer in (visual.layer1, visual.layer2, visual.layer3, visual.layer4):
            x = layer(x)
        return x.mean(dim=(2, 3))
    if not hasattr(visual, "_embeds") or not hasattr(visual, "transformer"):
        raise TypeError(f"token_mean needs an open_clip VisionTransformer or ModifiedResNet, got "
                        f"{type(visual).__name__}")
    tokens = visual.transformer(visual._embeds(images))  # (B, 1 + grid**2, width), batch-first
    return tokens.mean(dim=1)


def image_tensor(img, size: int, mean=OPENAI_MEAN, std=OPENAI_STD) -> torch.Tensor:
    """PIL image of any size -> normalised float tensor (3, size, size): :func:`model.views.resize_view`
    (shortest side to ``size``, bicubic, centre crop), then :func:`normalize_uint8`."""
    return normalize_uint8(torch.from_numpy(np.asarray(resize_view(img, size)).copy()), mean, std)


def normalize_uint8(pixels: torch.Tensor, mean=OPENAI_MEAN, std=OPENAI_STD) -> torch.Tensor:
    """uint8 pixels (..., H, W, 3) -> normalised float32 (..., 3, H, W), the model's input; the decoded-image
    cache of training stores :func:`model.views.resize_view` output and goes through this same function.

    (x / 255 - mean) / std as one fused multiply-add, and the result keeps the pixels' memory order: a
    (B, 3, H, W) batch is channels-last (NHWC) in memory, the layout :func:`token_mean` gives a convolutional
    tower on CPU, so no transposing copy is made (4x faster than dividing, subtracting and copying to NCHW)."""
    std_t = torch.tensor(std, dtype=torch.float32)
    scale, shift = 1.0 / (255.0 * std_t), -torch.tensor(mean, dtype=torch.float32) / std_t
    return torch.addcmul(shift, pixels.to(torch.float32), scale).movedim(-1, -3)


@dataclass(frozen=True)
class AuxSpec:
    """PIGEON auxiliary heads. ``regression``: target names (standardised with ``reg_mean``/``reg_std``)."""

    regression: tuple[str, ...] = ()
    reg_mean: tuple[float, ...] = ()
    reg_std: tuple[float, ...] = ()
    koppen_classes: tuple[str, ...] = ()
    months: bool = False

    @property
    def enabled(self) -> bool:
        return bool(self.regression or self.koppen_classes or self.months)

    def to_dict(self) -> dict[str, Any]:
        return {
            "regression": list(self.regression),
            "reg_mean": list(self.reg_mean),
            "reg_std": list(self.reg_std),
            "koppen_classes": list(self.koppen_classes),
            "months": self.months,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AuxSpec:
        return cls(tuple(d.get("regression", ())), tuple(d.get("reg_mean", ())), tuple(d.get("reg_std", ())),
                   tuple(d.get("koppen_classes", ())), bool(d.get("months", False)))


class GeoHead(nn.Module):
    """Linear geocell head (+ optional aux heads) on an embedding (B, D) -> dict of logits / predictions.

    ``feature_mean``/``feature_std`` buffers standardise the input (identity unless set by training); they
    ship in the checkpoint, so the head stays one affine map of the raw embedding.
    """

    def __init__(self, embed_dim: int, num_cells: int, aux: AuxSpec | None = None):
        super().__init__()
        aux = aux or AuxSpec()
        self.aux = aux
        self.register_buffer("feature_mean", torch.zeros(embed_dim))
        self.register_buffer("feature_std", torch.ones(embed_dim))
        self.cell = nn.Linear(embed_dim, num_cells)
        self.regression = nn.Linear(embed_dim, len(aux.regression)) if aux.regression else None
        self.koppen = nn.Linear(embed_dim, len(aux.koppen_classes)) if aux.koppen_classes else None
        self.month = nn.Linear(embed_dim, NUM_MONTHS) if aux.months else None

    @property
    def num_cells(self) -> int:
        return self.cell.out_features

    def forward(self, emb: torch.Tensor) -> dict[str, torch.Tensor]:
        x = (emb.float() - self.feature_mean) / self.feature_std
        out = {"cell": self.cell(x)}
        for key in ("regression", "koppen", "month"):
            layer = getattr(self, key)
            if layer is not None:
                out[key] = layer(x)
        return out


class GeoModel(nn.Module):
    """Visual tower + ``GeoHead``. ``forward(images (B, V, 3, H, W))`` fuses the V view embeddings with
    :func:`model.views.fuse_views` (``fusion``: PIGEON's view mean, or the views concatenated in heading order)."""

    def __init__(self, visual: nn.Module, head: GeoHead, image_size: int, mean=OPENAI_MEAN, std=OPENAI_STD,
                 fusion: str = "mean"):
        super().__init__()
        self.visual, self.head = visual, head
        self.image_size, self.mean, self.std = int(image_size), tuple(mean), tuple(std)
        self.fusion = fusion

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """(B, V, 3, H, W) -> per-view token-mean embeddings (B, V, D) in float32."""
        b, v = images.shape[:2]
        return token_mean(self.visual, images.flatten(0, 1)).float().reshape(b, v, -1)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        emb = fuse_views(self.embed(images), self.fusion)
        return {**self.head(emb), "embedding": emb}

    def preprocess(self, img) -> torch.Tensor:
        return image_tensor(img, self.image_size, self.mean, self.std)


@dataclass
class RunInfo:
    """What a run directory says about its model (from ``manifest.json``)."""

    run_dir: Path
    backbone: str
    embed_dim: int
    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    num_cells: int
    aux: AuxSpec
    views: list[int]
    manifest: dict[str, Any] = field(repr=False)
    fusion: str = "mean"  # model.views.fuse_views; "concat" needs exactly ``views``, in heading order

    @property
    def head_dim(self) -> int:
        return fused_dim(self.embed_dim, self.fusion, len(self.views))

    @property
    def geocells_dir(self) -> Path:
        return self.run_dir / rundir.GEOCELLS_DIR

    @property
    def metrics(self) -> dict[str, Any]:
        return self.manifest.get("metrics", {})

    def config(self) -> dict[str, Any]:
        import tomllib

        return tomllib.loads((self.run_dir / rundir.CONFIG_FILE).read_text(encoding="utf-8"))

    def geocells(self):
        from model.geocells.cells import load_geocells

        return load_geocells(self.geocells_dir)


def _read_tensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as e:
        raise FormatError(f"{path}: not a readable safetensors file ({e})") from None


def _load_strict(module: nn.Module, state: dict[str, torch.Tensor], what: str, path: Path) -> None:
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [f"{k} {tuple(state[k].shape)} != {tuple(own[k].shape)}" for k in own
              if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        parts = [
            f"missing {missing[:3]}" if missing else "",
            f"unexpected {unexpected[:3]}" if unexpected else "",
            f"shape mismatch {shapes[:3]}" if shapes else "",
        ]
        raise FormatError(f"{path}: weights do not match {what}: " + "; ".join(p for p in parts if p))
    module.load_state_dict(state)


def _count_cells(run_dir: Path) -> int:
    from model.geocells.cells import load_geocells

    try:
        return len(load_geocells(run_dir / rundir.GEOCELLS_DIR).centroids_deg)
    except (ValueError, KeyError) as e:
        raise FormatError(f"{run_dir / rundir.GEOCELLS_DIR}: geocells unreadable: {e}") from None


def load_run(run_dir: str | Path, device: str | torch.device = "cpu") -> tuple[GeoModel, RunInfo]:
    """Load a trained run for inference: ``(GeoModel in eval mode on device, RunInfo)``.

    Raises FileNotFoundError for missing files and ``FormatError`` for corrupt or inconsistent ones
    (size/sha256 mismatch, unknown backbone, weights that do not fit the backbone, head/geocell/manifest cell
    counts disagreeing).
    """
    run_dir = Path(run_dir)
    manifest = rundir.read_manifest(run_dir)
    rundir.verify_files(run_dir, manifest)
    name = manifest["backbone"].get("name") if isinstance(manifest["backbone"], dict) else None
    if name not in BACKBONES:
        raise FormatError(
            f"{run_dir / rundir.MANIFEST_FILE}: unknown backbone {name!r}; known: {', '.join(BACKBONES)}"
        )
    info = RunInfo(
        run_dir,
        name,
        int(manifest["embed_dim"]),
        int(manifest["image_size"]),
        tuple(manifest["mean"]),
        tuple(manifest["std"]),
        int(manifest["num_cells"]),
        AuxSpec.from_dict(manifest["aux"]),
        list(manifest.get("views", [0])),
        manifest,
        str(manifest.get("fusion", "mean")),  # runs written before fusion was recorded averaged their views
    )
    if info.fusion not in FUSIONS:
        raise FormatError(f"{run_dir / rundir.MANIFEST_FILE}: unknown view fusion {info.fusion!r}; known: "
                          f"{', '.join(FUSIONS)}")
    path = run_dir / rundir.MODEL_FILE
    tensors = _read_tensors(path)
    visual = build_visual(name, info.image_size)
    _load_strict(visual, {k[7:]: v for k, v in tensors.items() if k.startswith("visual.")},
                 f"the visual tower of backbone {name!r} at {info.image_size} px", path)
    width = tower_width(visual)
    if width != info.embed_dim:
        raise FormatError(
            f"{run_dir / rundir.MANIFEST_FILE}: embed_dim {info.embed_dim} but backbone {name!r} has {width}"
        )
    head_state = {k[5:]: v for k, v in tensors.items() if k.startswith("head.")}
    n_head = tuple(head_state.get("cell.weight", torch.empty(0)).shape[:1])
    n_cells = _count_cells(run_dir)
    if n_head != (info.num_cells,) or n_cells != info.num_cells:
        raise FormatError(f"{run_dir}: number of cells disagrees: head {n_head[0] if n_head else 'missing'}, "
                       f"manifest {info.num_cells}, geocells/ {n_cells}")
    head = GeoHead(info.head_dim, info.num_cells, info.aux)
    _load_strict(
        head,
        head_state,
        f"a GeoHead({info.head_dim}, {info.num_cells} cells, aux {info.aux.to_dict()}, {info.fusion} fusion)",
        path,
    )
    model = GeoModel(visual, head, info.image_size, info.mean, info.std, info.fusion).to(device).eval()
    return model, info


def autocast(device: torch.device | str):
    """bf16 autocast on CUDA, a no-op elsewhere (CPU stays float32)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def state_fingerprint(module: nn.Module) -> str:
    """sha256 over a module's state dict (names, dtypes, shapes, bytes): identifies backbone weights for
    caching."""
    import hashlib

    h = hashlib.sha256()
    for k, v in sorted(module.state_dict().items()):
        t = v.detach().cpu().contiguous()
        h.update(json.dumps([k, str(t.dtype), list(t.shape)]).encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()
