"""A Model's vocabulary: text to token ids and back, token pieces for display, and which
tokens end a generation, through llama.cpp's vocab handle."""

from __future__ import annotations

import codecs
import ctypes
from collections.abc import Callable, Iterable

import llama_cpp

from .. import utf8
from ..errors import PromptTooLongError


class TokenCalls:
    """Mixed into ``Model``, which sets the vocab handle and the per-id caches at load, and
    whose ``_require`` raises ModelUnloadedException once the model is unloaded."""

    add_bos: bool
    n_vocab: int
    context_length: int
    _longest_piece: int | None
    _vocab_ptr: llama_cpp.llama_vocab_p
    _pieces: list[bytes | None]
    _stop_cache: dict[int, bool]
    _vocab_list: list[str] | None
    _require: Callable[[], llama_cpp.Llama]

    @property
    def vocab(self) -> list[str]:
        """Every token's text as stored in the GGUF vocabulary (built on first use)."""
        if self._vocab_list is None:
            self._require()
            get_text = llama_cpp.llama_vocab_get_text
            self._vocab_list = [
                get_text(self._vocab_ptr, i).decode("utf-8", errors="replace")
                for i in range(self.n_vocab)
            ]
        return self._vocab_list

    @property
    def longest_token_bytes(self) -> int:
        """The most bytes of text one token spells, special tokens' included (found on first
        use): a text of more than ``n * longest_token_bytes`` bytes is more than n tokens,
        which is known without tokenizing it."""
        if self._longest_piece is None:
            self._require()
            pieces = (len(self._piece(token, special=True)) for token in range(self.n_vocab))
            self._longest_piece = max(1, max(pieces, default=1))
        return self._longest_piece

    def check_text_fits(self, text: str, what: str = "the prompt") -> None:
        """Refuse, before tokenizing it, a text longer than the context's tokens could spell
        (tokenizing 50 MB takes seconds and gigabytes in llama.cpp)."""
        limit = self.context_length
        if len(text) > limit and len(text) > limit * self.longest_token_bytes:
            raise PromptTooLongError(
                f"{what} is {len(text):,} characters, more than a context of {limit} tokens can "
                f"hold (a token spells at most {self.longest_token_bytes} bytes of text); "
                "shorten it or load the model with a larger context_length"
            )

    def tokenize(self, text: str, add_bos: bool | None = None, special: bool = True) -> list[int]:
        """Text to token ids. ``special=False`` keeps text like ``<|im_end|>`` as plain text,
        which is how user-typed content must be tokenized. ``add_bos=None`` follows the GGUF."""
        self._require()
        if add_bos is None:
            add_bos = self.add_bos
        try:
            raw = text.encode("utf-8")
        except UnicodeEncodeError:
            utf8.check(text, "the text to tokenize")  # says which byte, in one line
            raise
        capacity = len(raw) + 2
        buffer = (llama_cpp.llama_token * capacity)()
        count = llama_cpp.llama_tokenize(
            self._vocab_ptr, raw, len(raw), buffer, capacity, add_bos, special
        )
        if count < 0:
            capacity = -count
            buffer = (llama_cpp.llama_token * capacity)()
            count = llama_cpp.llama_tokenize(
                self._vocab_ptr, raw, len(raw), buffer, capacity, add_bos, special
            )
        return list(buffer[:count])

    def detokenize(self, tokens: Iterable[int], special: bool = False) -> str:
        """Token ids to text; ``special=True`` also renders control tokens like ``<|im_end|>``."""
        self._require()
        if special:
            data = b"".join(self._piece_special(token) for token in tokens)
        else:
            data = b"".join(self.token_bytes(token) for token in tokens)
        return data.decode("utf-8", errors="replace")

    def shown_text(self, tokens: Iterable[int]) -> str:
        """The text a reply generated as ``tokens`` shows: as ``detokenize``, except that the
        bytes of a character cut off at the end (a reply stopped or out of length midway
        through an emoji) are left out, as the generation's stream leaves them out."""
        self._require()
        data = b"".join(self.token_bytes(token) for token in tokens)
        # not final: an incomplete sequence at the end stays in the decoder, unreturned
        return codecs.getincrementaldecoder("utf-8")(errors="replace").decode(data)

    def token_bytes(self, token: int) -> bytes:
        """The bytes a token adds to the text (control tokens add none); cached per id."""
        piece = self._pieces[token]
        if piece is None:
            piece = self._piece(token, special=False)
            self._pieces[token] = piece
        return piece

    def token_text(self, token: int) -> str:
        """A token's text for display, special tokens included."""
        return self._piece_special(token).decode("utf-8", errors="replace")

    def _piece_special(self, token: int) -> bytes:
        return self._piece(token, special=True)

    def _piece(self, token: int, special: bool) -> bytes:
        buffer = ctypes_buffer(64)
        size = llama_cpp.llama_token_to_piece(self._vocab_ptr, token, buffer, 64, 0, special)
        if size < 0:
            buffer = ctypes_buffer(-size)
            size = llama_cpp.llama_token_to_piece(self._vocab_ptr, token, buffer, -size, 0, special)
        return bytes(buffer[:size])

    def is_eog(self, token: int) -> bool:
        """End-of-generation tokens (EOS, EOT, ``<|im_end|>``...) as the GGUF marks them."""
        known = self._stop_cache.get(token)
        if known is None:
            known = bool(llama_cpp.llama_vocab_is_eog(self._vocab_ptr, token))
            self._stop_cache[token] = known
        return known

    def get_length(self, text: str) -> int:
        """Length of ``text`` in tokens, including the BOS token the model adds."""
        return len(self.tokenize(text, add_bos=True))


def ctypes_buffer(size: int) -> ctypes.Array[ctypes.c_char]:
    return (ctypes.c_char * size)()
