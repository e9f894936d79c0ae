"""Worker processes: folds trained side by side (`kit train --jobs N`), and tying a worker's life to its parent.

A small tabular net's step on a CPU does not use a second core: one fold of the modern MLP on a 12,550-row table
took 134 s on one thread and 149 s on two (2-core Xeon). So folds are spread over `jobs` processes of
`threads` torch threads each (one on 2 cores), started with `spawn` (forking a process whose torch has run is
unsafe) and given the competition and the data once. Each fold starts from `seed_everything(its seed)`, so a fold's
result does not depend on which worker ran it or what it ran before; the caller adds the folds up in fold order.
A worker's start costs an import of torch and fastai (~6 s here), paid once per run.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import multiprocessing
import os
import pickle
import re
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from kit import devices, predictors
from kit.errors import KitError
from kit.spec import FoldOutput

# Training rows from which a net's folds go to worker processes by default: below, a fold takes a few seconds and
# the workers' start (~6 s) would cost more than it saves.
PARALLEL_ROWS = 3000
STAGING = "kit-folds-"  # the workers' work folder in the temp dir: STAGING<parent pid>-<random>
_WORKER: dict[str, Any] = {}  # the competition, data and parameters of this worker process (set by _start)


def can_spawn() -> bool:
    """Whether worker processes can be started here (their queues need POSIX semaphores: some sandboxes have
    none, or no /dev/shm)."""
    try:
        multiprocessing.get_context("spawn").Lock()
    except (OSError, ImportError, PermissionError):
        return False
    return True


def auto_jobs(n_folds: int) -> int:
    """Worker processes for a net's folds on this machine: one per core, up to the folds; one with a GPU (one
    device, shared), inside a multi-process run (`kit train --devices`), or where processes cannot be spawned."""
    n = devices.cores()
    if devices.distributed() or n == 1 or not can_spawn():
        return 1
    if devices.cuda_available():  # without a GPU driver the workers start before this process imports torch
        return 1
    return min(n, n_folds)


def die_with_parent(parent: int) -> None:
    """End this worker process when `parent` (the process that spawned it) dies, even by SIGKILL."""
    try:  # Linux: the kernel signals us the moment the parent exits
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass

    def watch() -> None:  # elsewhere (and as a backstop): an orphan is re-parented, so its parent id changes
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)
    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _start(parent: int, name: str, work: str, threads: int) -> None:
    """A fold worker's initializer: the competition's package imported (so that its pickled copy, which may
    come from a folder outside competitions/, can be read back), the competition, data and parameters read from
    the file `work`, torch's threads, warnings-only logging."""
    die_with_parent(parent)
    import torch

    from kit import registry

    registry.get(name)
    torch.set_num_threads(threads)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    comp, data, params = pickle.loads(Path(work).read_bytes())
    _WORKER.update(comp=pickle.loads(comp), data=data, params=params)


def clear_stale(root: Path) -> None:
    """Remove the work folders (`STAGING<pid>-*`, a copy of a run's data) that runs killed before they could
    (SIGKILL, a lost machine) left in `root`: those whose process is gone."""
    for d in root.glob(f"{STAGING}*"):
        pid = d.name[len(STAGING):].split("-")[0]
        if pid.isdigit() and not devices.process_alive(int(pid)):
            shutil.rmtree(d, ignore_errors=True)


def join_parts(parts: list[FoldOutput]) -> FoldOutput:
    """One fold from its parts, each trained apart (`Competition.fit_fold_part`): the mean of their predictions
    (what the fold's own loop computes from its nets), the first part's history, their predictors joined
    (kit.predictors.Joined)."""
    kept = tuple(p.predictor for p in parts)
    return FoldOutput(valid=np.mean([p.valid for p in parts], axis=0), test=np.mean([p.test for p in parts], axis=0),
                      history=parts[0].history,
                      predictor=None if any(k is None for k in kept) else predictors.Joined(kept))


def split_pays(n_folds: int, jobs: int, parts: int) -> bool:
    """Whether the folds' parts (Competition.fold_parts) sent to the workers one by one finish sooner than whole
    folds: 5 folds of 2 nets on 2 workers take 5 nets' time instead of 3 rounds of 2 (the last round leaves a
    core idle). A part pays its fold's features again, so folds that share out evenly stay whole."""
    return parts > 1 and -(-n_folds * parts // jobs) < parts * -(-n_folds // jobs)


def _fit(k: int, part: int | None, train_idx: np.ndarray, valid_idx: np.ndarray, seed: int,
         keep_predictor: bool) -> tuple[int, int | None, Any]:
    """One fold (or one part of it) in a worker: seeded first, so its result is the same whichever worker runs
    it."""
    from kit import learner

    learner.seed_everything(seed)
    w = _WORKER
    if part is None:
        out = w["comp"].fit_fold(w["data"], train_idx, valid_idx, w["params"], seed=seed, progress=False)
    else:
        out = w["comp"].fit_fold_part(w["data"], train_idx, valid_idx, w["params"], seed=seed, part=part)
    # not sent back when the caller does not keep it; else as the bytes the run's folder will hold
    out.predictor = predictors.Saved(predictors.dumps(out.predictor)) if keep_predictor else None
    return k, part, out


_MAIN_GUARD = re.compile(r"""__name__\s*==\s*['"]__main__['"]""")


def _death_cause() -> str:
    """What most likely killed a worker: a main program without a `__main__` guard, whose top-level code each
    spawned worker runs again on import (Python's RuntimeError scrolls by above); else memory. Console scripts
    (`kit`, `pytest`) and guarded scripts have the guard; spawn never re-runs a package's `__main__` (`-m kit`)."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    spec = getattr(main, "__spec__", None)
    if path and (spec is None or not spec.name.endswith("__main__")):
        try:
            guarded = bool(_MAIN_GUARD.search(Path(path).read_text(errors="replace")))
        except OSError:
            guarded = True  # unreadable: nothing to say about it
        if not guarded:
            return (f"out of memory, or {Path(path).name} calls kit outside `if __name__ == '__main__':`, which "
                    f"each spawned worker imports again")
    return "out of memory?"


def fit_folds(comp: Any, data: Any, params: dict[str, Any], folds: np.ndarray, todo: list[int], seed: int,
              jobs: int, threads: int, keep_predictors: bool = True, parts: int = 1) -> Iterator[tuple[int, Any]]:
    """(fold, FoldOutput) for each fold in `todo` as `jobs` worker processes finish them (fold k's seed is
    seed + k, as in the sequential loop); `parts` > 1: each fold's parts go to the workers one by one and are
    joined (join_parts) when its last comes back. An error in a fold is raised here; the other workers are
    stopped."""
    if not can_spawn():
        raise KitError(f"--jobs {jobs}: worker processes cannot be started here (no POSIX semaphores); use --jobs 1")
    # The workers read the competition and data from a file: as initargs they went down each worker's pipe, and
    # the pool's start of the next worker waited until this one had imported pandas and read them (1.8 s a
    # worker on movies' 58,000 rows), so the second worker began its imports that much later.
    clear_stale(Path(tempfile.gettempdir()))
    tmp = tempfile.TemporaryDirectory(prefix=f"{STAGING}{os.getpid()}-")
    work = Path(tmp.name) / "work.pkl"
    work.write_bytes(pickle.dumps((pickle.dumps(comp), data, params), protocol=pickle.HIGHEST_PROTOCOL))
    ctx = multiprocessing.get_context("spawn")
    pool = cf.ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_start,
                                  initargs=(os.getpid(), comp.name, str(work), threads))
    done: dict[int, dict[int, Any]] = {}
    try:
        futures = [pool.submit(_fit, k, part, np.flatnonzero(folds != k), np.flatnonzero(folds == k), seed + k,
                               keep_predictors) for k in todo for part in ([None] if parts == 1 else range(parts))]
        for f in cf.as_completed(futures):
            try:
                k, part, out = f.result()
            except cf.process.BrokenProcessPool:
                raise KitError(f"a fold's worker process died ({_death_cause()}); rerun with --jobs 1 or fewer "
                               f"jobs than {jobs}") from None
            if part is None:
                yield k, out
                continue
            done.setdefault(k, {})[part] = out
            if len(done[k]) == parts:
                fold = done.pop(k)
                yield k, join_parts([fold[m] for m in range(parts)])
    except BaseException:
        # the pool's own shutdown waits for the running folds: stop them now (an error or Ctrl-C)
        for p in list((getattr(pool, "_processes", None) or {}).values()):
            p.terminate()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    finally:
        tmp.cleanup()
    pool.shutdown(wait=True)
