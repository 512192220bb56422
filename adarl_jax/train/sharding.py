"""Where arrays live: a 1-D device mesh with a 'data' axis; params replicated, batch sharded.

Everything about placement is in this module, so the step functions stay placement-free.
"""

from __future__ import annotations

import collections

import numpy as np
import jax
import jax.numpy as jnp
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

DATA_AXIS = "data"


def make_mesh(num_devices: int | None = None) -> Mesh:
    """A mesh over all (global) devices, or the first `num_devices`."""
    devices = jax.devices()
    if num_devices:
        if num_devices > len(devices):
            raise ValueError(f"asked for {num_devices} devices, only {len(devices)} exist")
        devices = devices[:num_devices]
    return Mesh(np.asarray(devices), (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def batch_sharded(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P(DATA_AXIS))


def check_batch_size(batch_size: int, mesh: Mesh, name: str = "optim.batch_size") -> None:
    n = mesh.devices.size
    if batch_size % n:
        lo, hi = (batch_size // n) * n, -(-batch_size // n) * n
        raise ValueError(
            f"{name}={batch_size} is not divisible by the {n} devices of the mesh: set "
            f"{name} to a multiple of {n} (e.g. {lo or n} or {hi}), or run on a number of "
            f"devices that divides {batch_size}")


def jit_train_step(train_step, mesh: Mesh, donate: bool = True):
    """jax.jit with params/opt state replicated and the batch split over the data axis.

    BatchNorm statistics are computed over the whole (global) batch: the step is written for
    the global batch and XLA inserts the cross-device reductions.
    """
    rep, data = replicated(mesh), batch_sharded(mesh)
    return jax.jit(train_step, in_shardings=(rep, data), out_shardings=(rep, rep),
                   donate_argnums=(0,) if donate else ())


def jit_train_epoch(train_epoch, mesh: Mesh, donate: bool = True):
    """jax.jit of train_step.make_train_epoch(...): (state, data, order), all replicated; each
    scanned step gathers its batch and constrains it to the data axis."""
    rep = replicated(mesh)
    return jax.jit(train_epoch, in_shardings=(rep, rep, rep), out_shardings=(rep, rep),
                   donate_argnums=(0,) if donate else ())


def jit_predict(predict_fn, mesh: Mesh):
    """predict_fn(variables, x, functionals) jitted: the batch (x, and functionals unless None)
    is split over the data axis; the (small) outputs are gathered onto every device, so that
    every process, on one host or many, can read all of them."""
    rep, data = replicated(mesh), batch_sharded(mesh)
    return jax.jit(predict_fn, in_shardings=(rep, data, data), out_shardings=rep)


def _copy_tree(tree):
    return jax.tree.map(jnp.copy, tree)


def jit_copy(mesh: Mesh):
    """A copy of a replicated tree (e.g. the best-so-far state, which the next donated step
    would invalidate) as one compiled program for the whole tree (a module-level function,
    so that later folds reuse the first one's compilation)."""
    return jax.jit(_copy_tree, out_shardings=replicated(mesh))


def pad_rows(a: np.ndarray, rows: int) -> np.ndarray:
    """`a` with zero rows appended up to `rows` (`a` itself when it has them): a fixed leading
    size for a jitted program (a full batch, a held training set), the padding never read."""
    if len(a) == rows:
        return a
    out = np.zeros((rows, *a.shape[1:]), a.dtype)
    out[:len(a)] = a
    return out


def put_replicated(tree, mesh: Mesh):
    """Places a tree that every process holds whole (params, the training set) on all devices."""
    if jax.process_count() == 1:
        return jax.device_put(tree, replicated(mesh))
    rep = replicated(mesh)
    return jax.tree.map(lambda a: jax.make_array_from_process_local_data(rep, np.asarray(a)), tree)


def put_batch(batch: dict, mesh: Mesh) -> dict:
    """Places a global host batch (every process holds the same one, as the data pipeline is
    deterministic); with several processes each contributes only its own slice."""
    sharding = batch_sharded(mesh)
    if jax.process_count() == 1:
        return jax.device_put(batch, sharding)
    n, i = jax.process_count(), jax.process_index()
    out = {}
    for k, v in batch.items():
        per = len(v) // n
        out[k] = jax.make_array_from_process_local_data(sharding, np.asarray(v[i * per:(i + 1) * per]),
                                                        global_shape=np.shape(v))
    return out


def prefetch_batches(batches, mesh: Mesh, size: int = 2):
    """Yields the host batches placed on the devices (`put_batch`), `size` - 1 ahead: while the
    step on one batch runs (dispatched asynchronously), the next is gathered and copied."""
    queue = collections.deque()
    for batch in batches:
        queue.append(put_batch(batch, mesh))
        if len(queue) >= size:
            yield queue.popleft()
    while queue:
        yield queue.popleft()


def checked_mesh(config, mesh=None):
    """The device mesh (default: every device), once both batch sizes split over it."""
    mesh = mesh or make_mesh()
    check_batch_size(int(config.optim.batch_size), mesh)
    check_batch_size(int(config.train.eval_batch_size), mesh, "train.eval_batch_size")
    return mesh
