"""Resolving a `tf.distribute` strategy by name, once per process.

A process gets one strategy object: creating a second `MirroredStrategy` (or
any collective strategy) in the same process breaks the collectives of the
first, so `resolve_strategy` caches what it made and refuses to make another
kind later.

>>> from zoo.training import resolve_strategy
>>> strategy = resolve_strategy("auto")
>>> strategy.num_replicas_in_sync
1
"""

from __future__ import annotations

import json
import logging
import os
import threading

import tensorflow as tf

from zoo.training.config import KINDS

__all__ = [
    "KINDS",
    "resolve_strategy",
    "strategy_kind",
    "cluster_info",
    "ClusterInfo",
]

log = logging.getLogger(__name__)


_lock = threading.Lock()
_cached: tuple[str, tf.distribute.Strategy] | None = None


def resolve_strategy(kind: str = "auto", *, tpu: str | None = None) -> tf.distribute.Strategy:
    """Returns the process's `tf.distribute.Strategy` of the given kind.

    `auto` picks a TPU when one is reachable, `multi_worker` when `TF_CONFIG`
    names more than one task, `mirrored` for more than one GPU, and `default`
    otherwise. The first call creates the strategy; later calls asking for the
    same kind (or `auto`) return the same object.

    Args:
        kind: one of `KINDS`.
        tpu: TPU name or address for `tpu` (default: found from the
            environment, e.g. `TPU_NAME`).

    Returns:
        The strategy. `mirrored` uses every GPU, or every logical CPU device
        when there is no GPU and the CPU was split into several.

    Raises:
        ValueError: unknown kind, or a kind different from the strategy this
            process already uses.
        RuntimeError: `tpu` asked for but no TPU is reachable.
    """
    global _cached
    if kind not in KINDS:
        raise ValueError(f"Unknown strategy {kind!r}: expected one of {', '.join(KINDS)}.")
    with _lock:
        if _cached is not None:
            cached_kind, strategy = _cached
            if kind in ("auto", cached_kind):
                return strategy
            raise ValueError(
                f"This process already uses the {cached_kind!r} strategy; it cannot also create a "
                f"{kind!r} one (a second distribution strategy in one process breaks the first's "
                f"collectives). Run the {kind!r} training in a new process."
            )
        resolved = _auto_kind() if kind == "auto" else kind
        strategy = _create(resolved, tpu)
        _cached = (resolved, strategy)
        log.info("Using the %s strategy with %d replica(s).", resolved, strategy.num_replicas_in_sync)
        return strategy


def strategy_kind(strategy: tf.distribute.Strategy) -> str:
    """Returns the `KINDS` name of a strategy object (never `auto`)."""
    if _cached is not None and _cached[1] is strategy:
        return _cached[0]
    if isinstance(strategy, tf.distribute.TPUStrategy):
        return "tpu"
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return "multi_worker"
    if isinstance(strategy, tf.distribute.MirroredStrategy):
        return "mirrored"
    if isinstance(strategy, tf.distribute.OneDeviceStrategy):
        return "one_device"
    return "default"


class ClusterInfo:
    """Where this process sits in its cluster: worker count, index and chief role."""

    def __init__(self, num_workers: int, worker_index: int, is_chief: bool):
        self.num_workers = num_workers
        self.worker_index = worker_index
        self.is_chief = is_chief

    def __repr__(self):
        return f"ClusterInfo(num_workers={self.num_workers}, worker_index={self.worker_index}, is_chief={self.is_chief})"


def cluster_info(strategy: tf.distribute.Strategy) -> ClusterInfo:
    """Returns the number of workers, this worker's index and whether it is the chief.

    Workers are numbered as tf.distribute numbers input pipelines: the `chief`
    task first (if the cluster has one), then the `worker` tasks in order. The
    chief is the `chief` task, or worker 0 when there is none.
    """
    resolver = getattr(strategy, "cluster_resolver", None)
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) or resolver is None:
        return ClusterInfo(1, 0, True)
    spec = resolver.cluster_spec().as_dict()
    if not spec:
        return ClusterInfo(1, 0, True)
    tasks = [("chief", i) for i in range(len(_task_list(spec.get("chief"))))]
    tasks += [("worker", i) for i in range(len(_task_list(spec.get("worker"))))]
    me = (resolver.task_type, int(resolver.task_id or 0))
    if me not in tasks:
        raise ValueError(f"TF_CONFIG task {me} is not a chief or worker of the cluster {spec}.")
    index = tasks.index(me)
    return ClusterInfo(len(tasks), index, index == 0)


# --- internals -------------------------------------------------------------


def _task_list(tasks) -> list:
    if tasks is None:
        return []
    if isinstance(tasks, dict):
        return [tasks[k] for k in sorted(tasks)]
    return list(tasks)


def _tf_config_task_count() -> int:
    raw = os.environ.get("TF_CONFIG", "")
    if not raw.strip():
        return 0
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as error:
        raise ValueError(f"TF_CONFIG is not valid JSON ({error}): {raw[:200]!r}") from error
    cluster = config.get("cluster", {})
    return sum(len(_task_list(cluster.get(job))) for job in ("chief", "worker"))


def _tpu_hint() -> bool:
    # Probing for a TPU without a hint would query a cloud metadata server, so
    # `auto` looks for local TPU devices or the variables TPU VMs set.
    if any(os.environ.get(name) for name in ("TPU_NAME", "COLAB_TPU_ADDR", "TPU_ACCELERATOR_TYPE")):
        return True
    return os.path.exists("/dev/accel0") or os.path.exists("/dev/vfio/0")


def _auto_kind() -> str:
    if _tpu_hint():
        try:
            _tpu_resolver(None)
            return "tpu"
        except (ValueError, RuntimeError, tf.errors.OpError) as error:
            log.warning("A TPU looked reachable but connecting failed (%s); not using a TPU.", error)
    if _tf_config_task_count() > 1:
        return "multi_worker"
    if len(tf.config.list_physical_devices("GPU")) > 1:
        return "mirrored"
    return "default"


def _tpu_resolver(tpu: str | None):
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return resolver


def _create(kind: str, tpu: str | None) -> tf.distribute.Strategy:
    if kind == "default":
        return tf.distribute.get_strategy()
    if kind == "one_device":
        device = "/gpu:0" if tf.config.list_physical_devices("GPU") else "/cpu:0"
        return tf.distribute.OneDeviceStrategy(device)
    if kind == "mirrored":
        if tf.config.list_physical_devices("GPU"):
            return tf.distribute.MirroredStrategy()
        cpus = tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([d.name for d in cpus])
    if kind == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if kind == "tpu":
        try:
            resolver = _tpu_resolver(tpu)
        except (ValueError, RuntimeError, tf.errors.OpError) as error:
            raise RuntimeError(
                f"The 'tpu' strategy needs a reachable TPU (tpu={tpu!r}): {error}. "
                "Use --strategy auto to fall back to the available devices."
            ) from error
        return tf.distribute.TPUStrategy(resolver)
    raise AssertionError(kind)
