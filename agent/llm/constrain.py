"""Token-level constraints for the transformers backend: which next tokens keep the output valid.

- :class:`ChoiceConstraint`: a prefix trie over the token ids of each choice (as the tokenizer
  encodes it); end-of-sequence is allowed only where a choice is complete. Exact.
- :class:`RegexConstraint`: before each step, the vocabulary's tokens are tried against the
  ``regex`` package's partial full-match of ``text so far + token``; end-of-sequence is allowed
  only when the text fully matches. Exact for the tokens it considers, which excludes special tokens
  and tokens that decode to an incomplete UTF-8 sequence (a character split across tokens cannot be
  produced). The tokens are walked as a character trie (:class:`PieceTrie`, built once per
  tokenizer): a prefix that cannot continue the text prunes every token that starts with it (a
  partial match is prefix-closed, so this is exact), so a step costs one regex call per viable
  trie node and its children, not one per vocabulary token; each call still reads the whole text
  (memoised per prefix). Fine for small vocabularies and short outputs (the tiny test model, a
  Z=20 anticipation); slow for 100k-token vocabularies with long outputs.
- JSON schema: :func:`vidagent.llm.json_regex.schema_to_regex`, then :class:`RegexConstraint`.

:class:`ConstraintLogitsProcessor` applies one constraint to every row of a ``generate`` batch by
setting the logits of disallowed tokens to ``-inf`` before sampling.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from vidagent.llm.errors import StructuredOutputUnsupportedError
from vidagent.llm.types import StructuredOutput

_MEMO_LIMIT = 4096


class TokenConstraint(Protocol):
    """Which token ids may follow ``generated`` (the ids produced so far, prompt excluded)."""

    def allowed(self, generated: Sequence[int]) -> list[int]: ...


class ChoiceConstraint:
    """The output is one of ``choices``; built from their token ids."""

    def __init__(self, choices: Sequence[Sequence[int]], eos_id: int) -> None:
        self.eos_id = eos_id
        self.root: dict[int, Any] = {}
        for ids in choices:
            node = self.root
            for token in ids:
                node = node.setdefault(token, {})
            node[eos_id] = {}

    def allowed(self, generated: Sequence[int]) -> list[int]:
        node = self.root
        for token in generated:
            if token not in node:
                return [self.eos_id]
            node = node[token]
        return list(node) or [self.eos_id]


class PieceTrie:
    """The token texts as a character trie: node = (children by character, ids ending here)."""

    def __init__(self, pieces: Sequence[str | None]) -> None:
        self.root: tuple[dict[str, Any], list[int]] = ({}, [])
        for i, piece in enumerate(pieces):
            if not piece:
                continue
            node = self.root
            for ch in piece:
                node = node[0].setdefault(ch, ({}, []))
            node[1].append(i)


class RegexConstraint:
    """The output fully matches ``pattern``; ``pieces[i]`` is token ``i``'s text (None: unused).
    ``trie``: :class:`PieceTrie` of ``pieces`` (built here when not given)."""

    def __init__(
        self,
        pattern: str,
        pieces: Sequence[str | None],
        eos_id: int,
        trie: PieceTrie | None = None,
    ) -> None:
        import regex

        self.pattern = regex.compile(pattern)
        self.pieces = pieces
        self.eos_id = eos_id
        self.trie = trie if trie is not None else PieceTrie(pieces)
        self._memo: dict[str, list[int]] = {}

    def text(self, generated: Sequence[int]) -> str:
        """The text of ``generated`` as the constraint sees it."""
        return "".join(self.pieces[t] or "" for t in generated if t != self.eos_id)

    def complete(self, text: str) -> bool:
        return self.pattern.fullmatch(text) is not None

    def allowed(self, generated: Sequence[int]) -> list[int]:
        text = self.text(generated)
        cached = self._memo.get(text)
        if cached is not None:
            return cached
        match = self.pattern.fullmatch
        ids: list[int] = []
        stack = [(self.trie.root, text)]
        while stack:
            (children, _), prefix = stack.pop()
            for ch, child in children.items():
                extended = prefix + ch
                if match(extended, partial=True) is None:
                    continue  # neither this token nor any token starting with it fits
                ids.extend(child[1])
                if child[0]:
                    stack.append((child, extended))
        ids.sort()
        if self.complete(text):
            ids.append(self.eos_id)
        if len(self._memo) < _MEMO_LIMIT:
            self._memo[text] = ids
        return ids


def token_pieces(tokenizer: Any) -> list[str | None]:
    """Each token's own text, or None for special tokens and partial UTF-8 sequences."""
    special = set(tokenizer.all_special_ids)
    pieces: list[str | None] = []
    for i in range(len(tokenizer)):
        piece = None if i in special else tokenizer.decode([i], clean_up_tokenization_spaces=False)
        pieces.append(piece if piece and "\ufffd" not in piece else None)
    return pieces


def build_constraint(
    structured: StructuredOutput,
    tokenizer: Any,
    pieces: Sequence[str | None],
    eos_id: int,
    trie: PieceTrie | None = None,
) -> ChoiceConstraint | RegexConstraint:
    """The constraint for ``structured`` over ``tokenizer``'s vocabulary (``trie``: the
    :class:`PieceTrie` of ``pieces``, kept by the caller so it is built once)."""
    if structured.kind == "choice":
        assert structured.choices is not None
        return ChoiceConstraint(
            [tokenizer.encode(c, add_special_tokens=False) for c in structured.choices], eos_id
        )
    if structured.kind == "regex":
        assert structured.regex is not None
        return RegexConstraint(structured.regex, pieces, eos_id, trie)
    from vidagent.llm.json_regex import schema_to_regex

    assert structured.json_schema is not None
    return RegexConstraint(schema_to_regex(structured.json_schema), pieces, eos_id, trie)


class ConstraintLogitsProcessor:
    """A transformers logits processor: disallowed next tokens get ``-inf``.

    Rows that already produced end-of-sequence are left alone (``generate`` pads them anyway).
    """

    def __init__(self, constraint: TokenConstraint, prompt_len: int, eos_id: int) -> None:
        self.constraint = constraint
        self.prompt_len = prompt_len
        self.eos_id = eos_id

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        mask = torch.zeros_like(scores, dtype=torch.bool)
        for row, ids in enumerate(input_ids[:, self.prompt_len :].tolist()):
            if self.eos_id in ids:
                mask[row, :] = True
                continue
            allowed = self.constraint.allowed(ids)
            if not allowed:
                raise StructuredOutputUnsupportedError(
                    f"no token of the vocabulary continues the constrained output after {ids}"
                )
            mask[row, allowed] = True
        return scores.masked_fill(~mask, float("-inf"))
