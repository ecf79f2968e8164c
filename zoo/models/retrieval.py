"""Retrieval metrics: Recall@K and mAP@K of a similarity ranking, with relevance given by keys.

A gallery item is relevant to a query when their keys are equal: class
relevance passes the digits, attribute-matched relevance passes (digit,
slant, thickness) rows. Pure NumPy, in chunks of queries so a 10,000 x
10,000 similarity matrix never sits in memory at once.

>>> import numpy as np
>>> gallery = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
>>> retrieval_metrics(np.array([[0.0, 1.0]]), gallery, np.array([7]), np.array([7, 3, 7]), ks=(1, 2), map_k=3)
{'recall@1': 1.0, 'recall@2': 1.0, 'map@3': 0.8333333333333333}
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["retrieval_metrics", "top_k"]


def top_k(queries: np.ndarray, gallery: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k most similar gallery rows per query (dot product), best first: int [Q, k]."""
    scores = queries @ gallery.T
    k = min(k, scores.shape[1])
    # argpartition then a stable sort of the k: ties keep gallery order, so results are reproducible.
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def _as_keys(keys: np.ndarray, what: str, count: int) -> np.ndarray:
    keys = np.asarray(keys)
    keys = keys[:, None] if keys.ndim == 1 else keys
    if keys.ndim != 2 or len(keys) != count:
        raise ValueError(f"{what} has shape {np.asarray(keys).shape}; expected [{count}] or [{count}, K].")
    return keys


def retrieval_metrics(queries: np.ndarray, gallery: np.ndarray, query_keys: np.ndarray, gallery_keys: np.ndarray,
                      *, ks: Sequence[int] = (1, 5, 10), map_k: int = 10, chunk: int = 1024) -> dict[str, float]:
    """Recall@K and mAP@K of ranking `gallery` by similarity to each query.

    Recall@K: the share of queries with at least one relevant item among
    their K nearest (the retrieval "recall" of CLIP-style evaluations).
    AP@K of a query: (1 / min(R, K)) · Σ_{k≤K} precision@k · rel(k), R its
    number of relevant gallery items; mAP@K averages it over queries with
    R ≥ 1 (queries without any relevant item are left out).

    Args:
        queries: float [Q, D]; gallery: float [G, D] (unit rows for cosine).
        query_keys, gallery_keys: [Q] / [G] or [Q, K] / [G, K]; equal rows are relevant.
        ks: the K of each Recall@K.
        map_k: the K of mAP@K.
        chunk: queries scored at a time.

    Returns:
        {"recall@1": ..., "recall@5": ..., "recall@10": ..., "map@10": ...} as fractions.

    Raises:
        ValueError: for keys whose length differs from their embeddings', or ks < 1.
    """
    query_keys = _as_keys(query_keys, "query_keys", len(queries))
    gallery_keys = _as_keys(gallery_keys, "gallery_keys", len(gallery))
    if min([*ks, map_k]) < 1:
        raise ValueError(f"ks={list(ks)}, map_k={map_k}: expected integers >= 1.")
    depth = max([*ks, map_k])
    hits = {k: 0 for k in ks}
    ap_sum, ap_count = 0.0, 0
    for start in range(0, len(queries), chunk):
        q_keys = query_keys[start : start + chunk]
        ranked = top_k(queries[start : start + chunk], gallery, depth)
        relevant = np.all(gallery_keys[ranked] == q_keys[:, None, :], axis=-1)  # [q, depth]
        total = np.all(gallery_keys[None, :, :] == q_keys[:, None, :], axis=-1).sum(axis=1)  # [q]
        for k in ks:
            hits[k] += int(relevant[:, :k].any(axis=1).sum())
        rel = relevant[:, :map_k].astype(np.float64)
        precision = np.cumsum(rel, axis=1) / np.arange(1, rel.shape[1] + 1)
        has = total > 0
        ap = (precision * rel).sum(axis=1)[has] / np.minimum(total[has], map_k)
        ap_sum += float(ap.sum())
        ap_count += int(has.sum())
    result = {f"recall@{k}": hits[k] / len(queries) for k in ks}
    result[f"map@{map_k}"] = ap_sum / ap_count if ap_count else 0.0
    return result
