"""Question-aware support: which of two alternatives named in the prompt the grounding favours.

A question such as "Who was born first, Pablo Trapero or Aleksander Ford?" or "Which director is
American, Mark L. Lester or Ken Loach?" offers two options. A response that picks one can use only
grounded words and still be wrong: it picked the option the grounding does not support. This
module finds the two options (the capitalized names on either side of "or", or of the "and" in
"between A and B"), decides which one the grounding supports, and tells which one a response claim
chose:

* date comparisons (first/older/earlier/before vs younger/later/after/most recent): the first
  year of the first grounding sentence that names each option (sentences naming only that option
  first); the earlier (or later) wins;
* property questions (anything else): the question's remaining content words (e.g. "American",
  "bass guitar") counted in the grounding sentences that name each option but not the other; the
  option with more of them wins. No decision on a tie.

Pure Python, no model; it is a lexical heuristic and abstains (None) whenever it is unsure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from evaluators.claims import Span, Token, named_entities, tokenize

EARLIER_WORDS = frozenset("first older oldest earlier earliest elder eldest before sooner".split())
LATER_WORDS = frozenset("younger youngest later latest newer newest recent recently last after".split())
_YEAR_RE = re.compile(r"(?<!\d)(1\d{3}|20\d{2})(?!\d)")
_OR_RE = re.compile(r"\bor\b")
_AND_RE = re.compile(r"\band\b")
_BETWEEN_RE = re.compile(r"\bbetween\b", re.IGNORECASE)
# A property question is decided only when one option's sentences hold this many more of the
# question's property words than the other's.
PROPERTY_MARGIN = 2


@dataclass(frozen=True)
class Alternatives:
    options: tuple[str, str]  # the two option names as written in the prompt
    norms: tuple[frozenset[str], frozenset[str]]  # each option's content words not in the other
    supported: int  # index of the option the grounding supports
    how: str  # "date" or "property"
    direction: str | None = None  # "earlier"/"later" for a date comparison


def _direction(prompt_tokens: list[Token]) -> str | None:
    lowers = {t.lower for t in prompt_tokens}
    if lowers & EARLIER_WORDS and not lowers & LATER_WORDS:
        return "earlier"
    if lowers & LATER_WORDS and not lowers & EARLIER_WORDS:
        return "later"
    return None


def _names_around(text: str, names: list[Span], conj: re.Match[str]) -> tuple[Span, Span] | None:
    """The two names on either side of the conjunction `conj`, with nothing but a comma, a quote
    or "the" between: "Pablo Trapero or Aleksander Ford", "... or The Wolfhounds"."""
    before = [n for n in names if n.end <= conj.start()]
    after = [n for n in names if n.start >= conj.end()]
    if not before or not after:
        return None
    a, b = before[-1], after[0]
    if text[a.end:conj.start()].strip(" ,\"'") or text[conj.end():b.start].strip(" ,\"'") not in ("", "the", "The"):
        return None
    return a, b


def find_alternatives(prompt: str | None, chunks: list[tuple[str, frozenset[str]]]) -> Alternatives | None:
    """The prompt's two options and which one the grounding supports; None when the prompt offers
    no two named options or the grounding does not decide between them. `chunks` are the grounding
    sentences as (text, content norms)."""
    if not isinstance(prompt, str) or not (" or " in prompt or "between " in prompt.lower()):
        return None
    tokens = tokenize(prompt)
    names = named_entities(tokens, prompt)
    conj = None
    for conj in _OR_RE.finditer(prompt):
        pass
    pair = _names_around(prompt, names, conj) if conj is not None else None
    if pair is None:  # "In between Memphis International Airport and Southwest Georgia Regional Airport, which ..."
        between = _BETWEEN_RE.search(prompt)
        conj = _AND_RE.search(prompt, between.end()) if between else None
        parts = [part for name in names for part in _split_at_and(name, prompt)]
        pair = _names_around(prompt, parts, conj) if conj is not None else None
    if pair is None:
        return None
    a, b = pair
    a_norms = {t.norm for t in a.tokens if t.is_content}
    b_norms = {t.norm for t in b.tokens if t.is_content}
    own = (frozenset(a_norms - b_norms), frozenset(b_norms - a_norms))
    if not own[0] or not own[1]:
        return None
    direction = _direction(tokens)
    mentions = [[i for i, (_, norms) in enumerate(chunks) if own[k] <= norms] for k in (0, 1)]
    if direction is not None:
        years: list[int | None] = []
        for k in (0, 1):
            year = None
            # a sentence naming only this option says more about it than one naming both
            own_first = sorted(mentions[k], key=lambda i: i in mentions[1 - k])
            for i in own_first:
                found = _YEAR_RE.search(chunks[i][0])
                if found:
                    year = int(found.group(1))
                    break
            years.append(year)
        if years[0] is None or years[1] is None or years[0] == years[1]:
            return None
        earlier = 0 if years[0] < years[1] else 1
        return Alternatives((a.text, b.text), own, earlier if direction == "earlier" else 1 - earlier, "date", direction)
    option_norms = a_norms | b_norms
    prop = {t.norm for t in tokens if t.is_content and t.norm not in option_norms } - _QUESTION_FRAME
    if not prop:
        return None
    hits = []
    for k in (0, 1):
        seen: set[str] = set()
        for i in mentions[k]:
            if i not in mentions[1 - k]:
                seen |= chunks[i][1]
        hits.append(len(prop & seen))
    if abs(hits[0] - hits[1]) < PROPERTY_MARGIN:
        return None
    return Alternatives((a.text, b.text), own, 0 if hits[0] > hits[1] else 1, "property")


# Words of the question's frame rather than of the property asked about.
_QUESTION_FRAME = frozenset({"follow", "known", "best", "current", "person", "peopl", "thing"})


def chosen_option(tokens: tuple[Token, ...] | list[Token], alt: Alternatives) -> int | None:
    """Which option a claim picks: the only one it names; or, naming both, the one it names first
    (the other when it uses the opposite comparison, "X is younger than Y" for "who was born
    first?"). None when it names neither."""
    norms = [t.norm for t in tokens]
    present = [k for k in (0, 1) if alt.norms[k] & set(norms)]
    if not present:
        return None
    if len(present) == 1:
        return present[0]
    if alt.how != "date":
        return None
    first_pos = [min(i for i, n in enumerate(norms) if n in alt.norms[k]) for k in (0, 1)]
    first = 0 if first_pos[0] < first_pos[1] else 1
    lowers = {t.lower for t in tokens}
    earlier, later = bool(lowers & EARLIER_WORDS), bool(lowers & LATER_WORDS)
    if earlier == later:
        return first if earlier or "than" not in lowers else None
    said = "earlier" if earlier else "later"
    return first if said == alt.direction else 1 - first


def subject_pair(
    text: str, tokens: list[Token] | tuple[Token, ...], sentence_start: bool = False, adjacent_only: bool = False
) -> tuple[frozenset[str], frozenset[str]] | None:
    """The two named subjects of `tokens` ("Alan Furst and Lee Child are what?", "Are Gin and tonic
    and Paloma both ...?"), as the content words of each: the names on either side of an "and"/"or"
    (a name run "A and B" counts as two names), else (unless `adjacent_only`) the first two names.
    None when there are no such two. `text` is the text the token offsets point into."""
    if not tokens:
        return None
    names = [part for name in named_entities(tokens, text, sentence_start) for part in _split_at_and(name, text)]
    if len(names) < 2:
        return None
    conjunctions = _PAIR_CONJ_RE.finditer(text, tokens[0].start, tokens[-1].end)
    pair = next((p for conj in conjunctions if (p := _names_around(text, names, conj)) is not None), None)
    if pair is None:
        if adjacent_only:
            return None
        pair = (names[0], names[1])
    norms = tuple(frozenset(t.norm for t in name.tokens if t.is_content) for name in pair)
    return (norms[0], norms[1]) if norms[0] and norms[1] and norms[0] != norms[1] else None


def _split_at_and(name: Span, text: str) -> list[Span]:
    """A name run that joins two names with "and" ("Alan Furst and Lee Child") as its two parts."""
    parts: list[list[Token]] = [[]]
    for tok in name.tokens:
        if tok.lower == "and" and parts[-1]:
            parts.append([])
        else:
            parts[-1].append(tok)
    return [
        Span(text=text[p[0].start:p[-1].end], start=p[0].start, end=p[-1].end, tokens=tuple(p))
        for p in parts
        if any(t.is_content for t in p)
    ]


_PAIR_CONJ_RE = re.compile(r"\b(?:and|or)\b")
BOTH_WORDS = frozenset({"both"})


def both_subjects(
    text: str, tokens: list[Token] | tuple[Token, ...], sentence_start: bool,
    prompt_subjects: tuple[frozenset[str], frozenset[str]] | None,
) -> tuple[frozenset[str], frozenset[str]] | None:
    """The two subjects a claim says "both" about: those it names itself in "both A and B" / "A and
    B both" (None when they are not two names: "both up and down"), else, for "Both are ...", the
    prompt's two subjects. None when the claim does not say "both".

    Only an explicit "both": an answer to "What do A and B have in common?" that names neither
    ("playwright") is not checked for each, since the grounding often names one of them only
    through a pronoun or a demonym ("The character is voiced by Tom Kenny", "Australian")."""
    lowers = {t.lower for t in tokens}
    if not BOTH_WORDS & lowers:
        return None
    if "and" in lowers:
        return subject_pair(text, tokens, sentence_start, adjacent_only=True)
    return prompt_subjects


def not_for_both(
    tokens: list[Token] | tuple[Token, ...],
    pair: tuple[frozenset[str], frozenset[str]],
    passages: tuple[frozenset[str], ...] | list[frozenset[str]],
    grounded: frozenset[str],
) -> list[Token]:
    """For a claim about both of two subjects ("Yes, both cocktails are tequila-based", "Both are
    American authors", see `both_subjects`): its grounded content words that no grounding passage
    about one of the two holds ("tequila" is only in the passage about the Paloma). Empty when a
    subject has no passage (nothing to check it against)."""
    about = [[p for p in passages if subject <= p] for subject in pair]
    if not about[0] or not about[1]:
        return []
    names = pair[0] | pair[1]
    return [
        t for t in tokens
        if t.is_content and t.lower not in BOTH_WORDS and t.norm in grounded and t.norm not in names
        and not all(any(t.norm in p for p in ps) for ps in about)
    ]
