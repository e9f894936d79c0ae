"""Backbones and their pretrained weights, offline first.

`resolve_arch`: an `arch` name is kit's `small_cnn`, a torchvision model (`resnet34`) or a timm model
(`convnext_tiny`, `resnet50d.a1_in1k`, or any name as `timm/NAME`; a name torchvision also has is torchvision's
unless prefixed). `find_weights`: the pretrained weights a run uses, in this order: `--weights PATH` (a file,
or a folder searched like the caches), the `KIT_WEIGHTS` folder, torch hub's cache (`~/.cache/torch/hub`) and
Hugging Face's (`~/.cache/huggingface/hub`), then a download when the host resolves; each folder is searched in
the caches' own layouts (`hub/checkpoints/<torchvision or timm file>.pth`, `models--timm--NAME/snapshots/*/
model.safetensors`) and as plain `NAME.pth` / `NAME.safetensors`. Nothing found: one warning line, the net
trains from random weights. `load_weights`: the file's backbone tensors into the learner's body with strict
checks (the file's classifier is left out; a whole kit/fastai model must match the head too), or one line
saying why not (another architecture, another number of outputs, a truncated file).
"""

from __future__ import annotations

import concurrent.futures
import difflib
import hashlib
import logging
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kit.errors import DataError, KitError

if TYPE_CHECKING:  # torch is imported where weights are read: naming an arch needs none (small_cnn)
    import torch
    from torch import nn

log = logging.getLogger(__name__)

IMAGENET_STATS = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
ENV = "KIT_WEIGHTS"
SUFFIXES = (".pth", ".pt", ".safetensors", ".bin")
HF_FILES = ("model.safetensors", "pytorch_model.bin")
DNS_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class Arch:
    """An architecture name resolved to its library: kind is small_cnn, torchvision or timm; `model` is the
    library's own name (a timm name without the `timm/` prefix)."""

    name: str
    kind: str
    model: str

    @property
    def pretrainable(self) -> bool:
        """Whether pretrained weights exist for this kind (small_cnn: never)."""
        return self.kind != "small_cnn"


def _timm():
    try:
        import timm
    except ImportError:  # pragma: no cover - timm is a dependency
        return None
    return timm


def _torchvision_fn(name: str):
    import torchvision

    fn = getattr(torchvision.models, name, None)
    return fn if callable(fn) and not isinstance(fn, type) and not name.startswith("_") else None


def resolve_arch(arch: str) -> Arch:
    """`arch` as small_cnn / torchvision / timm; an unknown name is one line saying where kit looked."""
    arch = str(arch)
    if arch == "small_cnn":
        return Arch(arch, "small_cnn", arch)
    timm = _timm()
    if arch.startswith("timm/"):
        name = arch[len("timm/"):]
        if timm is not None and timm.is_model(name):
            return Arch(arch, "timm", name)
    else:
        if _torchvision_fn(arch) is not None and arch in _torchvision_names():
            return Arch(arch, "torchvision", arch)
        if timm is not None and timm.is_model(arch):
            return Arch(arch, "timm", arch)
    names = ["small_cnn", *_torchvision_names(), *(timm.list_models() if timm is not None else [])]
    close = difflib.get_close_matches(arch.removeprefix("timm/"), names, n=3, cutoff=0.6)
    hint = f"; close: {', '.join(close)}" if close else ""
    n_timm = len(timm.list_models()) if timm is not None else 0
    raise KitError(f"unknown architecture {arch!r}: kit looked in small_cnn, torchvision.models "
                   f"({len(_torchvision_names())} models) and timm ({n_timm} models, timm.list_models()){hint}")


def _torchvision_names() -> list[str]:
    import torchvision

    return list(torchvision.models.list_models(module=torchvision.models))


def torchvision_builder(name: str):
    """The torchvision model builder `name`."""
    fn = _torchvision_fn(name)
    if fn is None:
        raise KitError(f"unknown architecture {name!r}; use small_cnn, a torchvision or a timm model name")
    return fn


def _timm_cfg(model: str):
    try:
        return _timm().models.get_pretrained_cfg(model)
    except Exception:  # no default pretrained config for this name
        return None


def backbone_stats(arch: Arch) -> tuple[list[float], list[float]]:
    """The normalisation statistics the backbone's pretrained weights were trained with (timm's config: not
    always ImageNet's; torchvision: ImageNet's)."""
    if arch.kind == "timm":
        cfg = _timm_cfg(arch.model)
        if cfg is not None and cfg.mean and cfg.std and len(cfg.mean) == 3:
            return [float(v) for v in cfg.mean], [float(v) for v in cfg.std]
    return list(IMAGENET_STATS[0]), list(IMAGENET_STATS[1])


# ---- finding a weights file -------------------------------------------------------------------------------------


def _file_names(arch: Arch) -> tuple[list[str], list[str], list[str]]:
    """(exact file names, name prefixes `NAME-` of torch hub's hashed files, timm Hugging Face repo names)."""
    exact, prefixes, repos = [], [], []
    if arch.kind == "torchvision":
        try:
            import torchvision

            url = torchvision.models.get_model_weights(torchvision_builder(arch.model)).DEFAULT.url
            exact.append(url.rsplit("/", 1)[-1])
        except Exception:  # a builder without registered weights
            pass
        prefixes.append(f"{arch.model}-")
        stems = [arch.model]
    else:
        cfg = _timm_cfg(arch.model)
        stems = [arch.model]
        if cfg is not None:
            if cfg.url:
                exact.append(cfg.url.rsplit("/", 1)[-1])
            if cfg.hf_hub_id:
                repo = cfg.hf_hub_id.split("/")[-1]
                repos.append(repo)
                stems.append(repo)
            if cfg.architecture:
                stems.append(cfg.architecture)
        repos.append(arch.model)
    exact += [f"{s}{suf}" for s in dict.fromkeys(stems) for suf in SUFFIXES]
    return list(dict.fromkeys(exact)), prefixes, list(dict.fromkeys(repos))


def _search(root: Path, arch: Arch) -> Path | None:
    exact, prefixes, repos = _file_names(arch)
    if root.is_file():
        return root
    folders = [root, root / "checkpoints", root / "hub" / "checkpoints"]
    for d in folders:
        for name in exact:
            if (d / name).is_file():
                return d / name
        if d.is_dir():
            for prefix in prefixes:
                hits = sorted(p for p in d.glob(f"{prefix}*") if p.suffix in SUFFIXES and p.is_file())
                if hits:
                    return hits[0]
    for d in (root, root / "hub"):
        for repo in repos:
            snaps = d / f"models--timm--{repo}" / "snapshots"
            if snaps.is_dir():
                for snap in sorted(snaps.iterdir()):
                    for f in HF_FILES:
                        if (snap / f).is_file():
                            return snap / f
    return None


def cache_roots() -> list[tuple[str, Path]]:
    """The folders searched after `--weights`: $KIT_WEIGHTS, torch hub's cache, Hugging Face's cache."""
    import torch

    roots = []
    if os.environ.get(ENV):
        roots.append((f"${ENV}", Path(os.environ[ENV]).expanduser()))
    roots.append(("torch hub cache", Path(torch.hub.get_dir())))
    try:
        from huggingface_hub import constants

        roots.append(("Hugging Face cache", Path(constants.HF_HUB_CACHE)))
    except ImportError:  # pragma: no cover
        pass
    return roots


def _resolves(host: str) -> bool:
    """Whether `host` resolves within a few seconds (no network: no download attempt and its retries)."""
    ex = concurrent.futures.ThreadPoolExecutor(1)
    try:
        ex.submit(socket.getaddrinfo, host, 443).result(timeout=DNS_TIMEOUT_S)
        return True
    except Exception:
        return False
    finally:
        ex.shutdown(wait=False)


def _download(arch: Arch) -> tuple[Path | None, str]:
    """The normal download of the backbone's default weights, into the library's cache: (file, '') or
    (None, why not)."""
    if os.environ.get("KIT_OFFLINE") or os.environ.get("HF_HUB_OFFLINE") == "1":
        return None, "offline (KIT_OFFLINE / HF_HUB_OFFLINE)"
    try:
        if arch.kind == "torchvision":
            import torch
            import torchvision

            url = torchvision.models.get_model_weights(torchvision_builder(arch.model)).DEFAULT.url
            host = url.split("/")[2]
            if not _resolves(host):
                return None, f"no network ({host} does not resolve)"
            torch.hub.load_state_dict_from_url(url, progress=False, map_location="cpu")
            return Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1], ""
        cfg = _timm_cfg(arch.model)
        if cfg is None or not cfg.hf_hub_id:
            return None, "timm names no download for it"
        if not _resolves("huggingface.co"):
            return None, "no network (huggingface.co does not resolve)"
        from huggingface_hub import hf_hub_download

        last = ""
        for f in ([cfg.hf_hub_filename] if cfg.hf_hub_filename else list(HF_FILES)):
            try:
                return Path(hf_hub_download(cfg.hf_hub_id, f)), ""
            except Exception as e:
                last = str(e).splitlines()[0][:100] if str(e) else type(e).__name__
        return None, f"download failed ({last})"
    except Exception as e:
        return None, "download failed (" + (str(e).splitlines()[0][:100] if str(e) else type(e).__name__) + ")"


@dataclass(frozen=True)
class Weights:
    """A weights file a run loads, and where it was found."""

    path: Path
    source: str

    def record(self) -> dict[str, Any]:
        """For the run's record: the file, its SHA-256, where it came from."""
        return {"file": str(self.path), "name": self.path.name, "sha256": sha256(self.path), "source": self.source}


_FOUND: dict[tuple, Weights | None] = {}


def sha256(path: Path) -> str:
    """SHA-256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def find_weights(arch: Arch, explicit: str = "", pretrained: bool = True) -> Weights | None:
    """The weights file this run loads (None: random initialisation, said once in one line)."""
    if explicit:
        p = Path(explicit).expanduser()
        if not arch.pretrainable:
            raise KitError(f"weights={explicit}: arch small_cnn has no pretrained weights; pass a torchvision or "
                           "timm arch")
        if not p.exists():
            raise DataError(f"{p}: weights file not found")
        hit = _search(p, arch)
        if hit is None:
            raise DataError(f"{p}: no weights for {arch.name} in this folder (looked for "
                            f"{', '.join(_file_names(arch)[0][:3])}, hub/checkpoints/, models--timm--*/)")
        return Weights(hit.resolve(), "--weights")
    if not arch.pretrainable or not pretrained:
        return None
    roots = cache_roots()
    key = (arch.name, tuple(str(r) for _, r in roots))
    if key in _FOUND:
        return _FOUND[key]
    found = None
    for label, root in roots:
        hit = _search(root, arch) if root.is_dir() else None
        if hit is not None:
            found = Weights(hit.resolve(), label)
            break
    if found is None:
        path, why = _download(arch)
        if path is not None and path.is_file():
            found = Weights(path.resolve(), "download")
        else:
            looked = ", ".join(f"{label} ({root})" for label, root in roots)
            log.warning("no pretrained weights for %s (looked in --weights, %s; %s): the net trains from random "
                        "weights; pass --weights PATH or set %s", arch.name, looked, why, ENV)
    _FOUND[key] = found
    return found


# ---- loading ----------------------------------------------------------------------------------------------------


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from a .safetensors or torch file (unwrapping `state_dict` / `model`); a truncated or foreign
    file is one line."""
    import torch

    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd: Any = load_file(str(path), device="cpu")
        else:
            sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        msg = str(e).splitlines()[0][:100] if str(e) else type(e).__name__
        raise DataError(f"{path}: cannot read the weights (truncated or not a PyTorch/safetensors state dict: "
                        f"{msg})") from None
    for key in ("state_dict", "model", "state_dict_ema"):
        if isinstance(sd, dict) and key in sd and isinstance(sd[key], dict):
            sd = sd[key]
            break
    if not isinstance(sd, dict) or not sd or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise DataError(f"{path}: not a state dict of tensors")
    return {str(k).removeprefix("module."): v for k, v in sd.items()}


def _check(path: Path, arch: Arch, want: dict[str, torch.Tensor], sd: dict[str, torch.Tensor],
           ignored: tuple[str, ...] = ()) -> None:
    missing = [k for k in want if k not in sd]
    unexpected = [k for k in sd if k not in want and not k.startswith(ignored)]
    shapes = [k for k in want if k in sd and tuple(sd[k].shape) != tuple(want[k].shape)]
    if missing or unexpected or shapes:
        parts = []
        if shapes:
            k = shapes[0]
            parts.append(f"{len(shapes)} tensor(s) of other shapes, e.g. {k}: {tuple(sd[k].shape)} in the file, "
                         f"{tuple(want[k].shape)} in the model")
        if missing:
            parts.append(f"{len(missing)} of the backbone's {len(want)} tensors missing, e.g. {missing[0]}")
        if unexpected:
            parts.append(f"{len(unexpected)} unknown, e.g. {unexpected[0]}")
        raise DataError(f"{path}: not weights for {arch.name} ({'; '.join(parts)})")


def _full_model(sd: dict[str, torch.Tensor]) -> bool:
    return all(k.split(".", 1)[0] in ("0", "1") for k in sd) and any(k.startswith("1.") for k in sd)


def load_weights(model: nn.Sequential, arch: Arch, path: Path) -> None:
    """The file's tensors into `model` (fastai's body + head): a backbone state dict into the body (the file's
    classifier left out), a whole body + head state dict (a kit/fastai model) into both; strict, one line if not."""
    import torch

    sd = read_state_dict(path)
    if _full_model(sd):
        want = model.state_dict()
        head = [k for k in want if k.startswith("1.") and k.endswith("weight") and want[k].ndim == 2]
        if head and head[-1] in sd and sd[head[-1]].shape != want[head[-1]].shape:
            raise DataError(f"{path}: a model made for {sd[head[-1]].shape[0]} outputs; this run has "
                            f"{want[head[-1]].shape[0]}")
        _check(path, arch, want, sd)
        model.load_state_dict(sd)
        return
    body = model[0]
    if arch.kind == "timm":
        ref = body.model  # fastai's TimmBody around the timm model made with num_classes=0
        cls = ref.pretrained_cfg.get("classifier") or ()
        ignored = tuple(f"{c}." for c in ([cls] if isinstance(cls, str) else cls))
        want = ref.state_dict()
        _check(path, arch, want, sd, ignored)
        ref.load_state_dict({k: sd[k] for k in want})
        return
    # torchvision: the whole builder's model checked and loaded, its fastai body (create_body's cut) copied over
    from fastai.vision.learner import _default_meta, create_body, model_meta

    fn = torchvision_builder(arch.model)
    with torch.random.fork_rng():
        ref = fn(weights=None)
    ref_body = create_body(ref, 3, True, model_meta.get(fn, _default_meta)["cut"])
    in_body = {id(t) for t in ref_body.state_dict(keep_vars=True).values()}
    full = ref.state_dict(keep_vars=True)
    want = {k: t for k, t in full.items() if id(t) in in_body}
    head_prefixes = tuple(k.rsplit(".", 1)[0] + "." for k in full if id(full[k]) not in in_body)
    _check(path, arch, want, sd, head_prefixes)
    ref.load_state_dict({k: sd[k] for k in want}, strict=False)
    body.load_state_dict(ref_body.state_dict())
