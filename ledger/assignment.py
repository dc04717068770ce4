"""Least-cost maximum matching of a small bipartite graph (the Hungarian algorithm).

Bank reconciliation pairs bank lines with ledger entries of the same amount; within one amount
the pairs allowed are those close enough in date, and the best pairing is one with as many pairs
as possible and, among those, the least total date distance. Greedy pairing in file order can
take an entry a later line needed and leave both that line and another entry unmatched.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["least_cost_matching"]


def least_cost_matching(cost: Sequence[Sequence[int | None]]) -> list[tuple[int, int]]:
    """(row, column) pairs of a matching with the most pairs and, among those, the least total
    cost; `cost[row][column]` is None where the two may not be paired. O(rows² · columns) for
    rows <= columns: keep the graph small."""
    rows = len(cost)
    columns = len(cost[0]) if rows else 0
    if rows == 0 or columns == 0:
        return []
    if rows > columns:
        transposed = [[cost[r][c] for r in range(rows)] for c in range(columns)]
        return [(r, c) for c, r in least_cost_matching(transposed)]
    # A forbidden pair costs more than any matching of allowed pairs can: one more pair always wins.
    highest = max((c for row in cost for c in row if c is not None), default=0)
    forbidden = (highest + 1) * rows + 1
    square = [[forbidden if c is None else c for c in row] for row in cost]
    return [(r, c) for r, c in _hungarian(square) if cost[r][c] is not None]


def _hungarian(a: list[list[int]]) -> list[tuple[int, int]]:
    """Every row assigned a distinct column at least total cost (rows <= columns); the potentials
    method, rows and columns counted from 1 with column 0 a sentinel."""
    n, m = len(a), len(a[0])
    infinity = sum(max(row) for row in a) + 1
    u, v = [0] * (n + 1), [0] * (m + 1)
    owner, way = [0] * (m + 1), [0] * (m + 1)    # owner[j]: the row holding column j
    for i in range(1, n + 1):
        owner[0], j0 = i, 0
        least = [infinity] * (m + 1)
        used = [False] * (m + 1)
        while owner[j0] != 0:
            used[j0] = True
            i0, delta, j1 = owner[j0], infinity, 0
            for j in range(1, m + 1):
                if not used[j]:
                    reduced = a[i0 - 1][j - 1] - u[i0] - v[j]
                    if reduced < least[j]:
                        least[j], way[j] = reduced, j0
                    if least[j] < delta:
                        delta, j1 = least[j], j
            for j in range(m + 1):
                if used[j]:
                    u[owner[j]] += delta
                    v[j] -= delta
                else:
                    least[j] -= delta
            j0 = j1
        while j0 != 0:
            j1 = way[j0]
            owner[j0] = owner[j1]
            j0 = j1
    return sorted((owner[j] - 1, j - 1) for j in range(1, m + 1) if owner[j] != 0)
