"""A server's compressed answer, decompressed a bounded piece at a time.

httpx expands each chunk it receives in one call: a 6,777-byte answer sent as
``Content-Encoding: gzip, gzip`` holds 4 GiB of zeros, and its second layer came out of one
``decompress`` call before ezchat's readers could count a byte against ``--max-read-mb``. Here
every layer gives out at most ``PIECE`` bytes a call, so the readers see the answer grow and
stop it at their limit. ezchat asks only for what it decodes (gzip and deflate); any other
encoding, or more layers than ``MAX_LAYERS``, is refused as a broken answer.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator

import httpx

ACCEPTED = "gzip, deflate"
PIECE = 64 * 1024
# Servers compress once; a proxy in front of one may compress again. More is an attack.
MAX_LAYERS = 2
# zlib's window bits for each encoding: gzip (with or without a zlib header), zlib's deflate
_WBITS = {"gzip": zlib.MAX_WBITS | 32, "x-gzip": zlib.MAX_WBITS | 32, "deflate": zlib.MAX_WBITS}


def encodings(header: str) -> list[str]:
    """The layers a ``Content-Encoding`` header names, in the order they were applied
    (``identity`` left out); raises ``httpx.DecodingError`` for what ezchat does not decode."""
    layers = [name.strip().lower() for name in header.split(",")]
    layers = [name for name in layers if name and name != "identity"]
    unknown = [name for name in layers if name not in _WBITS]
    if unknown:
        raise httpx.DecodingError(
            f"the answer came in Content-Encoding {', '.join(unknown)!r}, which ezchat did not "
            f"ask for ({ACCEPTED})"
        )
    if len(layers) > MAX_LAYERS:
        raise httpx.DecodingError(
            f"the answer came compressed {len(layers)} times over (Content-Encoding "
            f"{header.strip()!r}); ezchat reads at most {MAX_LAYERS} layers"
        )
    return layers


def decoded(chunks: Iterable[bytes], layers: list[str]) -> Iterator[bytes]:
    """``chunks`` with each layer undone, the last applied first, in pieces of at most
    ``PIECE`` bytes."""
    for layer in reversed(layers):
        chunks = _inflated(chunks, _WBITS[layer])
    return iter(chunks)


def _inflated(chunks: Iterable[bytes], wbits: int) -> Iterator[bytes]:
    inflater = zlib.decompressobj(wbits)
    try:
        for chunk in chunks:
            data = chunk
            while data and not inflater.eof:
                piece = inflater.decompress(data, PIECE)
                data = inflater.unconsumed_tail
                if piece:
                    yield piece
                elif not data:
                    break
            # output still held back after the input ran out comes out a piece at a time too
            while not inflater.eof and (piece := inflater.decompress(b"", PIECE)):
                yield piece
    except zlib.error as exc:
        raise httpx.DecodingError(f"the answer's compressed body is damaged ({exc})") from None
