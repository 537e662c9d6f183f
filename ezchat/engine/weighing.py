"""How the model weighed a token: the softmax over the whole vocabulary and its top k, from
one position's logits, in a few vectorised numpy passes and no Python loop over the vocabulary.

This runs for every generated token of a chat (each keeps its probability and top 10), so it is
built to be cheap: one pass finds the maxima of column groups, which narrows the top k to a
few hundred candidates; one ``exp`` into a buffer allocated once and one sum give the softmax.
"""

from __future__ import annotations

import numpy as np

from ..chat.tree import TokenInfo

TOKEN_INFO_K = 10  # the alternatives every generated token keeps (issue 15: the top 10)

# The vocabulary is viewed as GROUP_ROWS rows; each column's maximum stands for the column.
# The top k tokens lie in the k columns with the largest maxima (a column holding one of them
# has a maximum at least that large), so the exact top k is found among k * GROUP_ROWS tokens.
GROUP_ROWS = 64
# exp() of logits this far from 0 cannot overflow float32, even summed over 2**20 tokens
# (e**60 * 2**20 < 3.4e38), so the max need not be subtracted first: one pass saved.
_SAFE_LOGIT = 60.0


class Weighing:
    """The softmax at one position and its top k: ``top_ids`` and ``top_probs``, most likely
    first; ``probability(token)`` for any token, the sampled one included."""

    __slots__ = ("_probs", "_total", "top_ids", "top_probs")

    def __init__(
        self, probs: np.ndarray, total: float, top_ids: np.ndarray, top_probs: np.ndarray
    ) -> None:
        self._probs = probs  # unnormalised exp(logits): valid until the weigher's next call
        self._total = total
        self.top_ids = top_ids
        self.top_probs = top_probs

    def probability(self, token: int) -> float:
        return float(self._probs[token]) / self._total

    def token_info(self, token: int, k: int = TOKEN_INFO_K) -> TokenInfo:
        top = tuple(zip(self.top_ids[:k].tolist(), self.top_probs[:k].tolist(), strict=True))
        return TokenInfo(int(token), self.probability(token), top)


class TokenWeigher:
    """Weighs the logits of a vocabulary of ``n_vocab`` tokens, reusing its buffer: the
    ``Weighing`` it returns is valid until the next call."""

    def __init__(self, n_vocab: int, k: int = TOKEN_INFO_K) -> None:
        self.n_vocab = n_vocab
        self.k = max(1, min(k, n_vocab))
        self._buffer = np.empty(n_vocab, dtype=np.float32)
        self._columns = n_vocab // GROUP_ROWS
        self._grid_end = self._columns * GROUP_ROWS
        # the column groups narrow the search only where there are more columns than k
        self._grouped = self._columns > 4 * self.k
        self._row_starts = (np.arange(GROUP_ROWS) * self._columns)[:, None]
        self._tail = np.arange(self._grid_end, n_vocab)

    def weigh(self, logits: np.ndarray) -> Weighing:
        top_ids, largest = self._top(logits)
        buffer = self._buffer
        if -_SAFE_LOGIT < largest < _SAFE_LOGIT:
            np.exp(logits, out=buffer)
        else:
            np.subtract(logits, largest, out=buffer)
            np.exp(buffer, out=buffer)
        total = float(buffer.sum())  # numpy sums float32 pairwise: exact enough
        return Weighing(buffer, total, top_ids, buffer[top_ids] / total)

    def _top(self, logits: np.ndarray) -> tuple[np.ndarray, float]:
        """The ids of the k largest logits, largest first, and the largest logit."""
        k = self.k
        if self._grouped:
            grid = logits[: self._grid_end].reshape(GROUP_ROWS, self._columns)
            column_max = grid.max(axis=0)
            best_columns = np.argpartition(column_max, -k)[-k:]
            candidates = (self._row_starts + best_columns).ravel()
            if self._tail.size:
                candidates = np.concatenate((candidates, self._tail))
        else:
            candidates = np.arange(self.n_vocab)
        values = logits[candidates]
        chosen = np.argpartition(values, -k)[-k:]
        ids, chosen_values = candidates[chosen], values[chosen]
        # largest first; equal logits in id order, so the first is the token argmax picks
        order = np.lexsort((ids, -chosen_values))
        return ids[order], float(chosen_values[order[0]])
