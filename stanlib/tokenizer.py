"""Text tokenisers: open_clip's BPE tokenizer for real CLIPs, a word-level one for the tiny model.

The tiny teaching CLIP (``stan-tiny``) only ever reads captions of the synthetic world, so a
word-level vocabulary of ~100 words keeps its token table (and the shipped weights) small.
open_clip's text tower pools the feature at ``argmax(token id)``, so the end-of-text id must be
the largest id in the vocabulary: we put it last, as CLIP's BPE vocabulary does.
"""
from __future__ import annotations

import re
from typing import Callable, Sequence, Union

import torch

# Every word the synthetic generator and the tiny model's teaching material use.
TINY_VOCAB: tuple[str, ...] = (
    # function words
    "a", "an", "the", "of", "in", "on", "at", "and", "is", "to", "from", "with", "then", "that",
    "video", "image", "photo", "picture", "clip", "shape", "object", "something",
    # colours
    "red", "green", "blue", "yellow", "purple", "magenta", "cyan", "orange", "white", "pink",
    "gray", "grey", "black", "brown",
    # shapes
    "circle", "square", "triangle", "star", "cross", "diamond", "ring", "bar", "disc", "box",
    # sizes and positions
    "small", "big", "large", "tiny", "top", "bottom", "middle", "center", "centre", "corner",
    "upper", "lower", "side",
    # motions
    "moves", "moving", "move", "left", "right", "up", "down", "grows", "growing", "grow",
    "shrinks", "shrinking", "shrink", "rotates", "rotating", "rotate", "spins", "spinning",
    "clockwise", "counterclockwise", "anticlockwise", "fades", "fading", "fade", "into", "out",
    "appears", "disappears", "still", "stays", "static", "bigger", "smaller", "towards", "away",
)

PAD, SOT, UNK = "<pad>", "<sot>", "<unk>"
EOT = "<eot>"
TINY_VOCAB_SIZE = 128  # must equal text_cfg.vocab_size of assets/configs/stan-tiny.json

Tokenizer = Callable[[Union[str, Sequence[str]]], torch.Tensor]


class WordTokenizer:
    """Lower-case word-level tokenizer: ``<sot> w1 w2 ... <eot> <pad>...``.

    Unknown words map to ``<unk>`` (id 2); pass ``strict=True`` to raise instead.
    """

    def __init__(self, vocab: Sequence[str] = TINY_VOCAB, vocab_size: int = TINY_VOCAB_SIZE,
                 context_length: int = 16, strict: bool = False):
        words = [PAD, SOT, UNK, *vocab]
        if len(words) + 1 > vocab_size:
            raise ValueError(f"vocabulary of {len(words) + 1} tokens does not fit vocab_size={vocab_size}")
        self.ids = {w: i for i, w in enumerate(words)}
        self.eot_id = vocab_size - 1  # largest id: open_clip pools at argmax(token id)
        self.words = {i: w for w, i in self.ids.items()} | {self.eot_id: EOT}
        self.context_length = context_length
        self.strict = strict

    def encode(self, text: str) -> list[int]:
        out = []
        for word in re.findall(r"[a-z]+", text.lower()):
            if word not in self.ids and self.strict:
                raise KeyError(f"word {word!r} is not in the tiny vocabulary (stanlib.tokenizer.TINY_VOCAB)")
            out.append(self.ids.get(word, self.ids[UNK]))
        return out

    def decode(self, ids: Sequence[int]) -> str:
        return " ".join(self.words[int(i)] for i in ids if int(i) not in (0, 1, self.eot_id))

    def __call__(self, texts: Union[str, Sequence[str]], context_length: int | None = None) -> torch.Tensor:
        texts = [texts] if isinstance(texts, str) else list(texts)
        n = context_length or self.context_length
        out = torch.zeros(len(texts), n, dtype=torch.long)
        for row, text in enumerate(texts):
            ids = [self.ids[SOT], *self.encode(text)][: n - 1] + [self.eot_id]  # truncate, keep <eot>
            out[row, : len(ids)] = torch.tensor(ids)
        return out


class ClipTokenizer:
    """open_clip's tokenizer for a model config name, with a default context length."""

    def __init__(self, clip_name: str, context_length: int = 77):
        import open_clip

        self._tok = open_clip.get_tokenizer(clip_name)
        self.context_length = context_length

    def __call__(self, texts: Union[str, Sequence[str]], context_length: int | None = None) -> torch.Tensor:
        return self._tok(texts, context_length=context_length or self.context_length)


def get_tokenizer(clip_name: str, context_length: int | None = None) -> Tokenizer:
    """The tokenizer that matches a CLIP config name (``stan-tiny`` -> word-level, else open_clip BPE).

    ``context_length`` defaults to the model's own (16 for stan-tiny, 77 for OpenAI CLIPs); recipes
    use 32 (MSR-VTT, LSMDC) or 64 (DiDeMo).
    """
    if clip_name.startswith("stan-tiny"):
        return WordTokenizer(context_length=context_length or 16)
    return ClipTokenizer(clip_name, context_length or 77)
