"""Multiply-add counts shared by the layers' `count_macs` methods."""


def dense_macs(positions: int, in_features: int, out_features: int) -> int:
    """Multiply-adds of a dense projection applied at `positions` positions."""
    return int(positions) * int(in_features) * int(out_features)


def attention_macs(
    query_length: int, key_length: int, query_dim: int, key_dim_in: int, num_heads: int, head_dim: int
) -> int:
    """Multiply-adds of a multi-head attention (projections, scores, weighted sum, output)."""
    inner = num_heads * head_dim
    projections = dense_macs(query_length, query_dim, inner) + 2 * dense_macs(key_length, key_dim_in, inner)
    scores_and_mix = 2 * query_length * key_length * inner
    output = dense_macs(query_length, inner, query_dim)
    return int(projections + scores_and_mix + output)
