"""CLIP's byte-level BPE tokenizer (lower-cased, 49,408 tokens), token-identical to OpenAI's.

The merges file ``bpe_simple_vocab_16e6.txt.gz`` is not vendored: it is taken from ``$CLIP_BPE_PATH`` or from the
installed ``open_clip_torch`` package (located without importing it).
"""
from __future__ import annotations

import functools
import gzip
import html
import importlib.util
import os

import regex as re

__all__ = ["SimpleTokenizer", "bytes_to_unicode", "default_bpe"]

BPE_FILE_NAME = "bpe_simple_vocab_16e6.txt.gz"
SOT_TEXT = "<|startoftext|>"
EOT_TEXT = "<|endoftext|>"
_NUM_MERGES = 49152 - 256 - 2


def default_bpe() -> str:
    """Path of the BPE merges file: ``$CLIP_BPE_PATH`` if set, else the copy shipped with open_clip_torch."""
    env = os.environ.get("CLIP_BPE_PATH")
    if env:
        if not os.path.isfile(env):
            raise FileNotFoundError(f"CLIP_BPE_PATH points to {env!r}, which is not a file")
        return env
    try:
        spec = importlib.util.find_spec("open_clip")
    except (ImportError, ValueError):
        spec = None
    for folder in (spec.submodule_search_locations or []) if spec is not None else []:
        candidate = os.path.join(folder, BPE_FILE_NAME)
        if os.path.isfile(candidate):
            return candidate
    raise FileNotFoundError(
        f"cannot find the CLIP BPE vocabulary {BPE_FILE_NAME}: `pip install open_clip_torch` (which ships it) "
        "or set CLIP_BPE_PATH to the file"
    )


@functools.lru_cache
def bytes_to_unicode() -> dict[int, str]:
    """Reversible map from the 256 byte values to printable unicode characters (GPT-2 convention).

    Printable Latin-1 bytes map to themselves; the others map to code points 256, 257, ... in byte order.
    The iteration order (printable bytes first) is the order of the first 256 vocabulary entries.
    """
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def _symbol_pairs(word: tuple[str, ...]) -> set[tuple[str, str]]:
    return set(zip(word[:-1], word[1:]))


def _is_ftfy_fixed_point(text: str) -> bool:
    """True for printable ASCII without ``&``: every ftfy fixer (mojibake, C1 controls, ligatures, widths, curly
    quotes, line breaks, surrogates, terminal escapes, control characters, NFC, HTML entities) leaves such text
    unchanged, so ``ftfy.fix_text`` (whose import costs ~0.3 s of every process) is skipped for it
    (``tests/test_clip_tokenizer.py`` checks the claim on class names and random strings)."""
    return text.isascii() and text.isprintable() and "&" not in text


def _fix_text(text: str) -> str:
    if _is_ftfy_fixed_point(text):
        return text
    import ftfy

    return ftfy.fix_text(text)


def _clean(text: str) -> str:
    """ftfy fix, HTML-unescape twice, collapse whitespace, strip, lower-case."""
    text = html.unescape(html.unescape(_fix_text(text))).strip()
    return re.sub(r"\s+", " ", text).strip().lower()


def _read_lines(path: str, n: int) -> list[str]:
    """The first ``n`` lines of a gzip text file (UTF-8), decompressing only as far as needed (the merges used are
    the first fifth of the file)."""
    chunks: list[bytes] = []
    newlines = 0
    with gzip.open(path, "rb") as fh:
        while newlines < n:
            chunk = fh.read(1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
            newlines += chunk.count(b"\n")
        data = b"".join(chunks)
        if fh.read(1):  # stopped early: keep whole lines only (a chunk may end inside a UTF-8 sequence)
            data = data[: data.rfind(b"\n") + 1]
    return data.decode("utf-8").split("\n")[:n]


class SimpleTokenizer:
    """Byte-level BPE with ``</w>`` end-of-word markers; ``<|startoftext|>`` is 49406, ``<|endoftext|>`` 49407."""

    def __init__(self, bpe_path: str | None = None) -> None:
        self.byte_encoder = bytes_to_unicode()
        self.byte_decoder = {c: b for b, c in self.byte_encoder.items()}
        lines = _read_lines(bpe_path or default_bpe(), _NUM_MERGES + 1)
        merges = [tuple(line.split()) for line in lines[1 : _NUM_MERGES + 1]]
        base = list(self.byte_encoder.values())
        vocab = base + [c + "</w>" for c in base] + ["".join(m) for m in merges] + [SOT_TEXT, EOT_TEXT]
        self.encoder: dict[str, int] = {tok: i for i, tok in enumerate(vocab)}
        self.decoder: dict[int, str] = {i: tok for tok, i in self.encoder.items()}
        self.bpe_ranks: dict[tuple[str, str], int] = {m: i for i, m in enumerate(merges)}
        self.cache: dict[str, str] = {SOT_TEXT: SOT_TEXT, EOT_TEXT: EOT_TEXT}
        self.pat = re.compile(
            r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
            re.IGNORECASE,
        )
        self.sot_token = self.encoder[SOT_TEXT]
        self.eot_token = self.encoder[EOT_TEXT]

    def bpe(self, token: str) -> str:
        """Merge the characters of one byte-encoded word; returns its symbols joined by spaces."""
        cached = self.cache.get(token)
        if cached is not None:
            return cached
        word = (*token[:-1], token[-1] + "</w>")
        pairs = _symbol_pairs(word)
        if not pairs:
            return token + "</w>"
        ranks = self.bpe_ranks
        while True:
            best = min(pairs, key=lambda p: ranks.get(p, float("inf")))
            if best not in ranks:
                break
            first, second = best
            merged: list[str] = []
            i = 0
            while i < len(word):
                try:
                    j = word.index(first, i)
                except ValueError:
                    merged.extend(word[i:])
                    break
                merged.extend(word[i:j])
                i = j
                if i < len(word) - 1 and word[i + 1] == second:
                    merged.append(first + second)
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = tuple(merged)
            if len(word) == 1:
                break
            pairs = _symbol_pairs(word)
        result = " ".join(word)
        self.cache[token] = result
        return result

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` (without start/end tokens)."""
        ids: list[int] = []
        for piece in self.pat.findall(_clean(text)):
            encoded = "".join(self.byte_encoder[b] for b in piece.encode("utf-8"))
            ids.extend(self.encoder[sym] for sym in self.bpe(encoded).split(" "))
        return ids

    def decode(self, tokens) -> str:
        """Text of token ids; end-of-word markers become spaces."""
        text = "".join(self.decoder[int(t)] for t in tokens)
        raw = bytearray(self.byte_decoder[c] for c in text)
        return raw.decode("utf-8", errors="replace").replace("</w>", " ")
