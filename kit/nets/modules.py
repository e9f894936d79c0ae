"""The tabular nets' modules. Both take the float matrix of `kit.nets.features.NetFeatures` ([numbers | codes])
and share one input encoder; they differ in the body:

- `TabularMLP`: numbers through periodic embeddings (PLR-lite, `rtdl_num_embeddings.PeriodicEmbeddings`;
  Gorishniy et al. 2022) or piecewise-linear ones on the training fold's quantile bins (`num_emb=ple`),
  small categoricals one-hot, large ones through learned embeddings, then a learned scale of each of those
  inputs (`FrontScale`, RealMLP's scaling layer), `depth` x (Linear -> ReLU -> Dropout) and a linear output;
- `TabM`: the same encoder in front of the `tabm` package's BatchEnsemble backbone (k sub-MLPs sharing most
  weights; Gorishniy et al., ICLR 2025). In training it returns every head, (batch, k, outputs), so the loss is
  the mean over heads (`kit.losses.EnsembleLoss`); in eval it returns one logit per output that is the
  heads' mean *probability* expressed as a logit (mean of values for regression), so kit's predictors and
  fastai's `get_preds` treat it like any other net.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

COMBINE = ("sigmoid", "softmax", "identity")
BITS = {2: torch.int16, 4: torch.int32, 8: torch.int64}  # a float dtype's bits, by its size in bytes


def embedding_size(cardinality: int) -> int:
    """fastai's rule of thumb (`emb_sz_rule`), capped at 32 for tables of modest size."""
    return int(min(32, round(1.6 * cardinality**0.56)))


class InputEncoder(nn.Module):
    """[numbers | codes] -> one flat vector: periodic or piecewise-linear embeddings of the numbers (or the numbers
    as they are), one-hot codes of columns with at most `max_onehot` levels, learned embeddings of larger ones."""

    def __init__(self, n_numeric: int, cardinalities: list[int], num_emb: str = "periodic", d_emb: int = 16,
                 max_onehot: int = 8, frequency_scale: float = 0.1, bins: list[torch.Tensor] | None = None) -> None:
        super().__init__()
        self.n_numeric = n_numeric
        self.cardinalities = list(cardinalities)
        self.onehot = [i for i, c in enumerate(self.cardinalities) if c <= max_onehot + 1]
        self.embedded = [i for i, c in enumerate(self.cardinalities) if c > max_onehot + 1]
        self.numbers = None  # the numbers' embedding module (periodic or piecewise-linear), or none
        if n_numeric and num_emb == "periodic":
            from rtdl_num_embeddings import PeriodicEmbeddings

            self.numbers = PeriodicEmbeddings(n_numeric, d_emb, n_frequencies=max(d_emb, 16),
                                              frequency_init_scale=frequency_scale, lite=True)
        elif n_numeric and num_emb == "ple":
            from rtdl_num_embeddings import PiecewiseLinearEmbeddings

            if bins is None or len(bins) != n_numeric:
                raise ValueError("num_emb='ple' needs the training fold's bin edges of every number")
            self.numbers = PiecewiseLinearEmbeddings(bins, d_emb, activation=False, version="B")
        self.embeddings = nn.ModuleList(nn.Embedding(self.cardinalities[i], embedding_size(self.cardinalities[i]))
                                        for i in self.embedded)
        self._index_onehot()
        self.n_out = ((n_numeric * d_emb if self.numbers is not None else n_numeric)
                      + sum(self.cardinalities[i] for i in self.onehot)
                      + sum(e.embedding_dim for e in self.embeddings))

    def _index_onehot(self) -> None:
        """The one-hot columns as one multi-hot scatter (one op a batch, not three per column: a small table's step
        is mostly per-op overhead); the same vector as their one-hot blocks side by side, in column order."""
        sizes = [self.cardinalities[i] for i in self.onehot]
        self.register_buffer("onehot_at", torch.tensor(self.onehot, dtype=torch.long), persistent=False)
        self.register_buffer("onehot_max", torch.tensor([c - 1 for c in sizes], dtype=torch.long), persistent=False)
        self.register_buffer("onehot_offset", torch.tensor([0, *sizes[:-1]], dtype=torch.long).cumsum(0),
                             persistent=False)
        self.n_onehot = sum(sizes)

    def __setstate__(self, state: dict) -> None:
        # pickled by an older kit (run folders keep their fold models): the numbers' embedding was `periodic`
        state = {("numbers" if k == "periodic" else k): v for k, v in state.items()}
        state["_modules"] = {("numbers" if k == "periodic" else k): v for k, v in state.get("_modules", {}).items()}
        super().__setstate__(state)
        if "onehot_at" not in self._buffers:  # pickled by an older kit (run folders keep their fold models)
            self._index_onehot()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        num, codes = x[:, : self.n_numeric], x[:, self.n_numeric :].long()
        parts = [self.numbers(num).flatten(1) if self.numbers is not None else num]
        if self.onehot:
            at = torch.minimum(codes[:, self.onehot_at].clamp(min=0), self.onehot_max) + self.onehot_offset
            parts.append(x.new_zeros(len(x), self.n_onehot).scatter_(1, at, 1.0))
        parts += [emb(codes[:, i].clamp(0, emb.num_embeddings - 1)) for i, emb in zip(self.embedded,
                                                                                   self.embeddings, strict=True)]
        return torch.cat(parts, dim=1)


class FastDropout(nn.Module):
    """Dropout whose mask comes from numpy's PCG64 bytes: torch's CPU `bernoulli_` (a Mersenne-Twister draw a
    unit) took 30 % of a small tabular net's step on a 2-core Xeon, 3.6 ms a 1,024 x 256 batch forward and
    backward, this mask 1.0 ms; whole runs took 0.78-0.89x the time, scores tied (bench/results/tabular-ab.md,
    "Dropout's random numbers and bfloat16"). `p` is rounded to 1/256 (a byte a unit), at most 255/256. The
    generator is seeded from torch's at construction, so a seeded fit draws the same masks; off the CPU torch's
    own dropout runs."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = float(p)
        self.threshold = min(int(round(self.p * 256)), 255)  # p near 1 keeps one unit in 256, never none
        self.rng = np.random.default_rng(int(torch.randint(0, 2**62, ())))
        self._kept: dict[torch.dtype, np.ndarray] = {}

    def extra_repr(self) -> str:
        return f"p={self.p}"

    def __getstate__(self) -> dict:
        # the generator as its plain state dict: a pickled numpy Generator object may not load under another numpy
        # (a packaged run's notebook on Kaggle), a dict of ints does
        state = self.__dict__.copy()
        state["rng"] = self.rng.bit_generator.state
        state["_kept"] = {}
        return state

    def __setstate__(self, state: dict) -> None:
        bits = np.random.PCG64()
        bits.state = state["rng"]
        state = {k: v for k, v in state.items() if k != "_tables"}  # an older kit's 256-entry tables
        super().__setstate__({"_kept": {}, **state, "rng": np.random.Generator(bits)})

    def _kept_bits(self, dtype: torch.dtype) -> np.ndarray:
        """A kept unit's mask value, 1 / (1 - p) in `dtype`, as the integer of its bits (numpy has no bfloat16)."""
        if dtype not in self._kept:
            value = torch.tensor(256 / (256 - self.threshold), dtype=torch.float32).to(dtype)
            self._kept[dtype] = value.view(BITS[value.element_size()]).numpy()
        return self._kept[dtype]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.threshold == 0:
            return x
        if x.device.type != "cpu":
            return F.dropout(x, self.p, True)
        draws = np.frombuffer(self.rng.bytes(x.numel()), np.uint8)
        kept = self._kept_bits(x.dtype)
        # the kept value's bits where a byte reaches the threshold, else 0 (0.0's bits), in one vectorised multiply:
        # a 256-entry table indexed by the bytes took 12x as long (0.43 ms a 512 x 256 mask, a fifth of a step)
        mask = np.multiply(draws >= self.threshold, kept, dtype=kept.dtype)
        return x * torch.from_numpy(mask).view(x.dtype).view(x.shape)


def mlp(n_in: int, n_out: int, width: int = 128, depth: int = 1, dropout: float = 0.0) -> nn.Sequential:
    """inputs -> `depth` x (Linear(width) -> ReLU -> Dropout) -> Linear(n_out); depth=1, width=128 is the seeds' MLP."""
    layers: list[nn.Module] = []
    d = n_in
    for _ in range(depth):
        layers += [nn.Linear(d, width), nn.ReLU()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        d = width
    layers.append(nn.Linear(d, n_out))
    return nn.Sequential(*layers)


def fast_dropout(module: nn.Module) -> None:
    """Every nn.Dropout inside `module` (the modern MLP's body, the tabm package's block) replaced by FastDropout
    of the same p."""
    for name, child in module.named_children():
        if isinstance(child, nn.Dropout):
            setattr(module, name, FastDropout(child.p))
        else:
            fast_dropout(child)


class FrontScale(nn.Module):
    """x * s, a learned scale per input unit (1 at the start) whose Adam steps are `lr_mult` times the body's:
    s = lr_mult * w with w starting at 1 / lr_mult (RealMLP's scaling layer: a soft, learned feature selection)."""

    def __init__(self, n: int, lr_mult: float) -> None:
        super().__init__()
        self.lr_mult = float(lr_mult)
        self.weight = nn.Parameter(torch.full((n,), 1.0 / self.lr_mult))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * (self.weight * self.lr_mult)


class TabularMLP(nn.Module):
    """InputEncoder -> FrontScale (front_scale > 0) -> depth x (Linear(width) -> ReLU -> Dropout) -> Linear(n_out)."""

    def __init__(self, n_numeric: int, cardinalities: list[int], n_out: int, width: int = 256, depth: int = 3,
                 dropout: float = 0.1, num_emb: str = "periodic", d_emb: int = 16, emb_scale: float = 0.1,
                 bins: list[torch.Tensor] | None = None, front_scale: float = 0.0) -> None:
        super().__init__()
        self.encoder = InputEncoder(n_numeric, cardinalities, num_emb, d_emb, frequency_scale=emb_scale, bins=bins)
        self.body = mlp(self.encoder.n_out, n_out, width, depth, dropout)
        if front_scale > 0:
            self.body.insert(0, FrontScale(self.encoder.n_out, front_scale))
        fast_dropout(self.body)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(self.encoder(x))


class TabM(nn.Module):
    """InputEncoder (shared by the heads) -> tabm's BatchEnsemble MLP with k heads."""

    def __init__(self, n_numeric: int, cardinalities: list[int], n_out: int, combine: str, k: int = 16,
                 width: int = 256, depth: int = 3, dropout: float = 0.1, num_emb: str = "periodic",
                 d_emb: int = 16, emb_scale: float = 0.1, arch_type: str = "tabm",
                 bins: list[torch.Tensor] | None = None, front_scale: float = 0.0) -> None:
        super().__init__()
        import tabm

        if combine not in COMBINE:
            raise ValueError(f"combine must be one of {COMBINE}")
        self.combine = combine
        self.encoder = InputEncoder(n_numeric, cardinalities, num_emb, d_emb, frequency_scale=emb_scale, bins=bins)
        self.net = tabm.TabM.make(n_num_features=self.encoder.n_out, d_out=n_out, k=k, n_blocks=depth,
                                  d_block=width, dropout=dropout, arch_type=arch_type)
        self.scale = FrontScale(self.encoder.n_out, front_scale) if front_scale > 0 else nn.Identity()
        fast_dropout(self.net)

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        if "scale" not in self._modules:  # pickled by an older kit (run folders keep their fold models)
            self.scale = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        heads = self.net(self.scale(self.encoder(x)))  # (batch, k, n_out)
        if self.training:
            return heads
        if self.combine == "identity":
            return heads.mean(1)
        if self.combine == "softmax":  # log of the mean probability: a valid logit for softmax
            return torch.logsumexp(F.log_softmax(heads, dim=-1), dim=1) - math.log(heads.shape[1])
        p = torch.sigmoid(heads.float()).mean(1).clamp(1e-7, 1 - 1e-7)
        return torch.log(p) - torch.log1p(-p)
