"""Training on several devices: `kit train --devices N` starts itself again as N processes through torch's elastic
launcher (what `torchrun` runs), one per CUDA device, or N CPU processes when there is no GPU (gloo backend).
Each fold's fit runs under fastai's `Learner.distrib_ctx()` (Hugging Face Accelerate: DistributedDataParallel,
every rank training on its own shard of each epoch, gradients averaged); the validation
metric and loss are gathered over the ranks, so callbacks that choose an epoch choose the same one everywhere.
Predictions are made after the fit by every rank on the whole validation and test sets with the same weights, so
the OOF and test arrays have the shape and order of a single-process run; only rank 0 writes (fold checkpoints,
image caches, the run folder, the submission) and prints. `bs` stays the batch of one optimiser step: each
rank takes bs // N of its rows, so the parameters keep their meaning (a `kit tune` result trains the same way).

A launcher that sets torch's environment (`RANK`, `WORLD_SIZE`, `LOCAL_RANK`, `MASTER_ADDR`, `MASTER_PORT`) works
the same: `torchrun --standalone --nproc-per-node N -m kit train ...` (`accelerate launch --cpu --num_processes N`
starts one process on a CPU machine without MPI). With one process (the default) nothing here is used and a run is
byte-for-byte what it was. `cores` and `threads_per_job`: the CPU cores this process may use, shared out between
worker processes (this launcher's, `kit tune --n-jobs`', `kit train --jobs`').
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from kit.errors import KitError

T = TypeVar("T")

# a rank other than 0 that fails waits this long for rank 0 (which runs the same code on the same data, so hits the
# same error) to print it and end the run; it reports the error itself only if rank 0 carries on
PEER_ERROR_GRACE_S = 10.0
_PATCHED = False  # Accelerate's state made and fastai's broadcast fixed (`_setup`)
_ORDERED = False  # inside `rank0_first`


def world_size() -> int:
    """Processes in this run (1 without a launcher)."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def rank() -> int:
    """This process's global rank (0 without a launcher)."""
    return int(os.environ.get("RANK", "0") or 0)


def distributed() -> bool:
    """Whether this process is one of several started by a launcher."""
    return world_size() > 1


def is_main() -> bool:
    """Whether this process writes and prints: rank 0, or the only process."""
    return rank() == 0


CPU_MAX = Path("/sys/fs/cgroup/cpu.max")  # cgroup v2: "<quota> <period>" in microseconds, or "max <period>"


def cores(cpu_max: Path = CPU_MAX) -> int:
    """The CPU cores this process may use: its affinity mask (a container's cpuset), capped by a cgroup v2 CPU
    quota (`docker --cpus`), which `os.cpu_count` ignores: 5 workers of 12 threads on a 2-CPU container of a
    64-core host would crawl."""
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        quota, period = Path(cpu_max).read_text().split()[:2]
        if quota != "max":
            n = min(n, max(1, int(quota) // int(period)))
    except (OSError, ValueError):
        pass
    return max(1, n)


# Device nodes without which no CUDA device can be present: NVIDIA's driver, AMD ROCm's, WSL2's GPU bridge.
GPU_NODES = ("/dev/nvidiactl", "/dev/kfd", "/dev/dxg")


def gpu_possible(nodes: tuple[str, ...] = GPU_NODES) -> bool:
    """Whether a CUDA device may be present, answered without importing torch: torch's own answer where it is
    imported, else whether one of the GPU drivers' device nodes exists."""
    torch = sys.modules.get("torch")
    if torch is not None:
        return bool(torch.cuda.is_available())
    return any(Path(p).exists() for p in nodes)


def cuda_available() -> bool:
    """Whether a CUDA device is present, importing torch only where a GPU driver's device node exists (else
    the answer is no without torch's ~2 s import)."""
    if not gpu_possible():
        return False
    import torch

    return bool(torch.cuda.is_available())


def fast_cpu_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether this CPU multiplies bfloat16 matrices in hardware tiles (Intel AMX, `amx_bf16`): there a tabular
    net's 1,024-row step runs up to 1.35x faster under bfloat16 autocast; elsewhere bfloat16 gains little or
    nothing (emulated or AVX-512 only), so kit's nets stay in float32."""
    try:
        with open(cpuinfo) as f:
            for line in f:
                if line.startswith("flags"):
                    return "amx_bf16" in line.split()
    except OSError:
        pass
    return False


def process_alive(pid: int) -> bool:
    """Whether process `pid` exists on this machine (another user's counts: signalling it is refused, not
    failed)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def threads_per_job(jobs: int) -> int:
    """torch threads of each of `jobs` worker processes: the cores shared out (at least one)."""
    return max(1, cores() // max(jobs, 1))


def check(n: int, comp: Any, params: dict[str, Any]) -> None:
    """Refuse `--devices n` (or a launcher's processes) in one line when it cannot run: fewer CUDA devices than
    asked, Apple MPS, a tree model (not a fastai Learner), a launcher started with another count."""
    if n < 1:
        raise KitError(f"--devices must be at least 1 (got {n})")
    if distributed() and n not in (1, world_size()):
        raise KitError(f"--devices {n}, but the launcher started {world_size()} processes")
    n = max(n, world_size())
    if n == 1:
        return
    import torch

    if torch.cuda.is_available():
        have = torch.cuda.device_count()
        if n > have:
            raise KitError(f"--devices {n}: only {have} CUDA device{'s' if have != 1 else ''} here")
    elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        raise KitError(f"--devices {n}: several processes cannot share Apple's MPS device; use --devices 1")
    net_kind = getattr(comp, "net_kind", None)
    if net_kind is not None and net_kind(params) is None:
        raise KitError(f"--devices {n}: {comp.describe_model(params)} is a tree model, trained in one process "
                       "(--devices is for the nets; use --threads)")


def launch(n: int, argv: Sequence[str], module: str = "kit") -> int:
    """Run `python -m kit <argv>` as `n` processes on this machine (torchrun's standalone rendezvous: a free port,
    no port clash between concurrent runs); rank 0 prints the run's output and errors. Returns its exit code."""
    from torch.distributed import run as torchrun
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    saved = {k: os.environ.get(k) for k in ("PYTHONPATH", "OMP_NUM_THREADS")}
    root = str(Path(__file__).resolve().parents[1])  # the children import this kit, whatever sys.path had
    os.environ["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [saved["PYTHONPATH"]])])
    # torchrun would set 1 with a warning; N processes share the cores (`--threads` still sets torch's own)
    os.environ.setdefault("OMP_NUM_THREADS", str(threads_per_job(n)))
    for name in ("torch.distributed.elastic", "torch.distributed.run", "torch.distributed.launcher"):
        logging.getLogger(name).setLevel(logging.CRITICAL)  # rank 0 says what went wrong, in one line
    args = torchrun.parse_args(["--standalone", f"--nproc-per-node={n}", "--max-restarts=0", "--module", module,
                                *argv])
    try:
        torchrun.run(args)
    except ChildFailedError as e:
        failures = dict(e.failures)
        first = failures.get(0, failures[min(failures)])
        return first.exitcode if first.exitcode > 0 else 1
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return 0


def rank_main(main: Callable[[Sequence[str] | None], int]) -> Callable[[Sequence[str] | None], int]:
    """`main` as one rank of a launched run: ranks other than 0 print nothing on stdout, log warnings only, and
    leave an error that rank 0 hits too (the same data, the same code) to rank 0 to report. Unchanged in one
    process."""
    if not distributed():
        return main

    def ranked(argv: Sequence[str] | None) -> int:
        import torch

        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))  # "cuda" is this rank's device
        if is_main():
            return main(argv)
        sys.stdout = open(os.devnull, "w")  # for the life of the process
        logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        try:
            return main(argv)
        except Exception:
            # the same KitError as rank 0's, or gloo's "connection closed" once rank 0 has failed: the launcher
            # ends this process as soon as rank 0's failure is seen, so only a failure of this rank alone is shown
            time.sleep(PEER_ERROR_GRACE_S)
            raise

    return ranked


def fit_context(learn: Any) -> contextlib.AbstractContextManager:
    """fastai's `distrib_ctx` around a fit when this process is one of several, else nothing."""
    return _distributed_fit(learn) if distributed() else contextlib.nullcontext()


@contextlib.contextmanager
def _distributed_fit(learn: Any) -> Iterator[None]:
    """The training loader's batch split over the ranks (each takes bs // N rows, so an epoch keeps the steps
    and the batch size that the parameters were chosen for), under `distrib_ctx`: without CUDA, Accelerate
    needs `cpu=True` and SyncBatchNorm (no CPU kernel) is left out."""
    cuda = _setup()
    train = learn.dls.train
    bs = train.bs
    train.bs = max(1, bs // world_size())
    try:
        with learn.distrib_ctx(sync_bn=cuda, cpu=not cuda):
            yield
    finally:
        train.bs = bs


def rank0_first(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`fn(*args)` on rank 0 first, then on the other ranks (fastai's `rank0_first`), so that what it writes
    (a decoded-image cache) is written once and read by the rest; a plain call in one process or inside another
    `rank0_first` (already ordered: its barriers would pair with the outer one's)."""
    global _ORDERED
    if not distributed() or _ORDERED:
        return fn(*args, **kwargs)
    from fastai.distributed import rank0_first as fastai_rank0_first

    _setup()
    _ORDERED = True
    try:
        return fastai_rank0_first(fn, *args, **kwargs)
    finally:
        _ORDERED = False


def _setup() -> bool:
    """Accelerate's process state, made once for the process before any `Accelerator` (the first one made
    decides: without `cpu=True` CPU processes are not taken as distributed), and fastai's broadcast fixed for
    gloo. Returns whether the ranks are on CUDA."""
    global _PATCHED
    import torch

    cuda = torch.cuda.is_available()
    if _PATCHED:
        return cuda
    from accelerate import PartialState

    PartialState(cpu=not cuda)
    _cpu_broadcast()
    _PATCHED = True
    return cuda


def _cpu_broadcast() -> None:
    """fastai's DistributedDL broadcasts rank 0's shuffled indices as a CUDA tensor (nccl only); with gloo (CPU
    processes) the tensor must stay on the CPU. nccl keeps fastai's behaviour."""
    import torch
    from fastai.distributed import DistributedDL
    from fastcore.basics import patch_to

    original = DistributedDL._broadcast

    @patch_to(DistributedDL)
    def _broadcast(self: DistributedDL, t: list, rank: int) -> list:
        if torch.distributed.get_backend() == "nccl":
            return original(self, t, rank)
        t = torch.as_tensor(t, dtype=torch.long)
        torch.distributed.broadcast(t, rank)
        return t.tolist()
