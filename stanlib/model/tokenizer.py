"""Text tokenisers: open_clip's BPE tokenizer for real CLIPs, a word-level one for the tiny model.

The tiny teaching CLIP (``stan-tiny``) only ever reads captions of the synthetic world, so a
word-level vocabulary of ~100 words keeps its token table (and the shipped weights) small.
open_clip's text tower pools the feature at ``argmax(token id)``, so the end-of-text id must be
the largest id in the vocabulary: we put it last, as CLIP's BPE vocabulary does.
"""
from __future__ import annotations

import argparse
import re
import sys
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

# Version 2 of the tiny CLIP (``stan-tiny-v2``) keeps every id of version 1 and adds the words of its
# broader pretraining world: lighting changes, textured scenes and their sprites.
TINY_VOCAB_V2: tuple[str, ...] = TINY_VOCAB + (
    "gets", "getting", "get", "becomes", "brighter", "darker", "bright", "dark", "light", "lighter",
    "scene", "background", "everything", "it", "camera", "glyph", "letter", "blob", "striped", "stripes",
)
# CLIP config name -> its word-level vocabulary
TINY_VOCABS: dict[str, tuple[str, ...]] = {"stan-tiny": TINY_VOCAB, "stan-tiny-v2": TINY_VOCAB_V2}

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
                raise KeyError(f"word {word!r} is not in the tiny vocabulary (stanlib.model.tokenizer.TINY_VOCAB)")
            out.append(self.ids.get(word, self.ids[UNK]))
        return out

    def unknown(self, texts: Union[str, Sequence[str]]) -> list[str]:
        """Words of ``texts`` outside the vocabulary (each once, in order of first appearance)."""
        texts = [texts] if isinstance(texts, str) else texts
        out: dict[str, None] = {}
        for text in texts:
            for word in re.findall(r"[a-z]+", str(text).lower()):
                if word not in self.ids:
                    out[word] = None
        return list(out)

    @property
    def vocabulary(self) -> list[str]:
        """The known words, in id order (the special tokens left out)."""
        return [w for i, w in sorted(self.words.items()) if w not in (PAD, SOT, UNK, EOT)]

    def __repr__(self) -> str:
        for name, vocab in TINY_VOCABS.items():
            if self.vocabulary == list(vocab):
                table = "TINY_VOCAB" if name == "stan-tiny" else "TINY_VOCAB_V2"
                return f"the {name} word-level tokenizer ({len(vocab)} words, stanlib.model.tokenizer.{table})"
        return f"a word-level tokenizer of {len(self.vocabulary)} words"

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

    def __repr__(self) -> str:
        return f"open_clip's BPE tokenizer ({type(self._tok).__name__})"


def get_tokenizer(clip_name: str, context_length: int | None = None) -> Tokenizer:
    """The tokenizer that matches a CLIP config name (``stan-tiny`` -> word-level, else open_clip BPE).

    ``context_length`` defaults to the model's own (16 for stan-tiny, 77 for OpenAI CLIPs); recipes
    use 32 (MSR-VTT, LSMDC) or 64 (DiDeMo).
    """
    if clip_name.startswith("stan-tiny"):
        if clip_name not in TINY_VOCABS:
            raise ValueError(f"no word-level vocabulary for {clip_name!r}; tiny CLIPs: {sorted(TINY_VOCABS)}")
        return WordTokenizer(TINY_VOCABS[clip_name], context_length=context_length or 16)
    return ClipTokenizer(clip_name, context_length or 77)


# --------------------------------------------------------------------------- unknown words
class UnknownWordsError(ValueError):
    """Texts hold words that the tokenizer maps to ``<unk>``; ``words`` lists them."""

    def __init__(self, message: str, words: Sequence[str]):
        super().__init__(message)
        self.words = list(words)


def _resolve(tokenizer) -> object:
    """A tokenizer object from a tokenizer, a model with ``.tokenizer`` or a CLIP config name."""
    if isinstance(tokenizer, str):
        return get_tokenizer(tokenizer)
    inner = getattr(tokenizer, "tokenizer", None)  # a STANModel or a dataset
    return inner if inner is not None and callable(inner) else tokenizer


def unknown_words(texts: Union[str, Sequence[str]], tokenizer) -> list[str]:
    """The words of ``texts`` that ``tokenizer`` maps to ``<unk>``, each once, in order of appearance.

    ``tokenizer`` is a tokenizer, a model or dataset with a ``.tokenizer``, or a CLIP config name.
    Only word-level tokenizers (the tiny CLIP's) have unknown words: open_clip's BPE tokenizers
    spell any word with sub-word pieces, so for them (and any other callable) the answer is ``[]``.
    """
    tokenizer = _resolve(tokenizer)
    return tokenizer.unknown(texts) if isinstance(tokenizer, WordTokenizer) else []


def vocabulary(tokenizer="stan-tiny") -> list[str] | None:
    """The known words of a word-level tokenizer (default: the tiny CLIP's); None for BPE tokenizers,
    which know every word."""
    tokenizer = _resolve(tokenizer)
    return tokenizer.vocabulary if isinstance(tokenizer, WordTokenizer) else None


def describe_tokenizer(tokenizer) -> str:
    """A short readable name of a tokenizer for messages."""
    tokenizer = _resolve(tokenizer)
    if isinstance(tokenizer, (WordTokenizer, ClipTokenizer)):
        return repr(tokenizer)
    return f"tokenizer {getattr(tokenizer, '__name__', type(tokenizer).__name__)}"


def unknown_words_message(words: Sequence[str], tokenizer, where: str = "the texts", *,
                          allow_hint: bool = True) -> str:
    """One message naming the unknown words, the tokenizer, and the ways out (``allow_hint``: also
    the training option that accepts them)."""
    shown = ", ".join(repr(w) for w in words[:20]) + (f" and {len(words) - 20} more" if len(words) > 20 else "")
    return (f"{where} use {len(words)} word(s) that {describe_tokenizer(tokenizer)} does not know: {shown}. "
            "Each becomes <unk>, so texts that differ only in these words embed identically. Use words of "
            "the vocabulary (`stanlib vocab` lists them, so does stanlib.model.tokenizer.vocabulary()) or extend it "
            "(docs/architecture.md section 7.1)"
            + (", or accept the <unk> tokens with `--set allow_unknown_words=true` (Config.allow_unknown_words)."
               if allow_hint else "."))


def check_words(texts: Union[str, Sequence[str]], tokenizer, where: str = "the texts", *,
                allow: bool = False) -> list[str]:
    """Find the unknown words of ``texts``: raise :class:`UnknownWordsError` naming them (or, with
    ``allow=True``, warn) and return them."""
    words = unknown_words(texts, tokenizer)
    if words:
        message = unknown_words_message(words, tokenizer, where, allow_hint=not allow)
        if not allow:
            raise UnknownWordsError(message, words)
        import warnings

        warnings.warn(message, stacklevel=2)
    return words


# --------------------------------------------------------------------------- `stanlib vocab`
def cli_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="stanlib vocab", description="List the words the tiny CLIP's tokenizer knows, or check texts "
        "(class names, captions) for words it would turn into <unk>.")
    parser.add_argument("texts", nargs="*", help="texts to check; none: print the vocabulary")
    parser.add_argument("--clip", default="stan-tiny-v2",
                        help="CLIP config name (default stan-tiny-v2, the tiny presets' CLIP; stan-tiny: the "
                             "first one)")
    parser.add_argument("--file", help="a text file to check, one text per line (e.g. a class list)")
    args = parser.parse_args(argv)
    try:
        tokenizer = get_tokenizer(args.clip)
    except Exception as err:  # open_clip raises several types for unknown names
        print(f"stanlib vocab: --clip {args.clip!r}: {err}", file=sys.stderr)
        return 2
    texts = list(args.texts)
    if args.file:
        try:
            with open(args.file, encoding="utf-8") as f:
                texts += [line.strip() for line in f if line.strip()]
        except OSError as err:
            print(f"stanlib vocab: --file {args.file!r}: {err.strerror}", file=sys.stderr)
            return 2
    if not texts:
        words = vocabulary(tokenizer)
        if words is None:
            print(f"{describe_tokenizer(tokenizer)}: every word is known (sub-word pieces)")
        else:
            print(f"{describe_tokenizer(tokenizer)}:\n" + " ".join(words))
        return 0
    words = unknown_words(texts, tokenizer)
    if words:
        print(unknown_words_message(words, tokenizer, f"{len(texts)} text(s)", allow_hint=False))
        return 1
    print(f"all words of {len(texts)} text(s) are known to {describe_tokenizer(tokenizer)}")
    return 0
