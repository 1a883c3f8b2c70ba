"""Data parallelism on PyTorch's own engine: the process group ``torchrun`` describes.

``torchrun --nproc_per_node=N -m hymirec train ...`` starts N processes with ``WORLD_SIZE``,
``RANK``, ``LOCAL_RANK`` and a rendezvous address in their environment; ``join_world`` joins them
into one ``torch.distributed`` group (gloo on the CPU, NCCL on CUDA, or as ``train.backend``
says). A process started without torchrun is a world of one and none of this runs.

What the trainer builds on it (``hymirec.training.trainer``): every rank draws the same global
batch order and takes its contiguous share of each global batch, so N processes see the batches
one process sees; gradients are averaged by ``DistributedDataParallel``; evaluation splits users
(and the catalogue's embedding) across ranks and gathers exact per-user results. Collectives
here move tensors, never pickled objects.
"""

from __future__ import annotations

import atexit
import math
import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_nn

from hymirec.config import ConfigError

BACKENDS = ("auto", "gloo", "nccl")


@dataclass(frozen=True)
class World:
    """This process's place among the training processes: ``rank`` of ``size``; ``device``: where
    its collectives' tensors live (CUDA for NCCL, else the CPU)."""

    rank: int = 0
    size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def main(self) -> bool:
        """The process that writes files (checkpoints, metrics, results)."""
        return self.rank == 0

    def barrier(self) -> None:
        """Wait for every rank (a no-op in a world of one)."""
        if self.distributed:
            dist.barrier()

    def share(self, n: int, unit: int = 1) -> range:
        """This rank's contiguous share of ``range(n)`` in whole ``unit``s (the last may be short):
        units dealt as evenly as they go, the first ranks taking one more. No index is repeated
        or padded, so gathered per-index results are exactly those of one process."""
        units = -(-n // unit)
        lo = self.rank * (units // self.size) + min(self.rank, units % self.size)
        hi = lo + units // self.size + (self.rank < units % self.size)
        return range(min(lo * unit, n), min(hi * unit, n))

    def all_sum(self, values: torch.Tensor) -> torch.Tensor:
        """``values`` summed over the ranks (float64 on the collectives' device)."""
        values = values.detach().to(self.device, torch.float64)
        if self.distributed:
            dist.all_reduce(values)
        return values

    def gather_rows(self, rows: torch.Tensor, grad: bool = False) -> torch.Tensor:
        """Every rank's ``rows`` (any first-dimension length) concatenated in rank order, on
        ``rows``' device; ``grad``: gathered through ``torch.distributed.nn``, so the gradient of
        each rank's rows flows back to the rank that made them."""
        if not self.distributed:
            return rows
        home = rows.device
        sizes = torch.zeros(self.size, dtype=torch.long, device=self.device)
        sizes[self.rank] = len(rows)
        dist.all_reduce(sizes)
        longest = int(sizes.max())
        padded = torch.cat([rows.to(self.device), rows.new_zeros(longest - len(rows), *rows.shape[1:]).to(self.device)])
        if grad:
            parts = dist_nn.all_gather(padded)
        else:
            parts = [torch.empty_like(padded) for _ in range(self.size)]
            dist.all_gather(parts, padded.contiguous())
        return torch.cat([part[: int(n)] for part, n in zip(parts, sizes)]).to(home)

    def gather_array(self, rows: np.ndarray, n: int) -> np.ndarray:
        """``gather_shares`` of a numpy array of any dtype, moved as bytes (collectives take few
        of numpy's unsigned and half types)."""
        if not self.distributed:
            return rows
        width = rows.dtype.itemsize * math.prod(rows.shape[1:])  # explicit: a rank's share may be empty
        as_bytes = torch.from_numpy(np.ascontiguousarray(rows).view(np.uint8).reshape(len(rows), width))
        return self.gather_shares(as_bytes, n).numpy().view(rows.dtype).reshape(n, *rows.shape[1:])

    def gather_shares(self, rows: torch.Tensor, n: int) -> torch.Tensor:
        """Rows computed for this rank's ``share`` of ``n``, gathered into all ``n`` in order."""
        gathered = self.gather_rows(rows)
        if len(gathered) != n:
            raise RuntimeError(f"gathered {len(gathered)} rows of {n}: ranks disagree on the shares")
        return gathered


WORLD_OF_ONE = World()


def _backend(setting: str, device: torch.device) -> str:
    if setting not in BACKENDS:
        raise ConfigError(f"train.backend must be one of {BACKENDS}, got {setting!r}")
    backend = ("nccl" if device.type == "cuda" else "gloo") if setting == "auto" else setting
    if backend == "nccl" and (device.type != "cuda" or not torch.cuda.is_available()):
        raise ConfigError(
            "train.backend is nccl, which needs a CUDA device per process, but the run trains on "
            f"{device}; use gloo (or auto) on the CPU"
        )
    return backend


def launched_processes() -> int:
    """How many processes torchrun started (1 without torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def launched_rank() -> int:
    """This process's rank among those torchrun started (0 without torchrun): the one that
    prints and writes is rank 0."""
    return int(os.environ.get("RANK", "0"))


def rank_device(device: torch.device) -> torch.device:
    """The device of this rank: under torchrun a CUDA run takes the GPU of its ``LOCAL_RANK``."""
    if device.type == "cuda" and launched_processes() > 1 and device.index is None:
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


def join_world(backend: str, device: torch.device) -> World:
    """Join the process group torchrun set up (once per process; later calls return the same
    world), or a world of one without torchrun. Errors come before any training: an unknown
    backend, NCCL without CUDA."""
    if launched_processes() <= 1:
        return WORLD_OF_ONE
    name = _backend(backend, device)
    if not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(name)
        # Left to the interpreter's exit, gloo's worker threads can outlive the group and abort
        # one rank ("terminate called without an active exception", seen under load).
        atexit.register(dist.destroy_process_group)
    elif dist.get_backend() != name:
        raise ConfigError(f"this process already joined a {dist.get_backend()} group; train.backend asks for {name}")
    return World(dist.get_rank(), dist.get_world_size(), device if name == "nccl" else torch.device("cpu"))


def shard_unit(*batch_sizes: int) -> int:
    """The smallest share of users that keeps every batching of them the same on any rank (the
    least common multiple of the batch sizes), so a sharded evaluation is exact, not close."""
    return math.lcm(*batch_sizes)
