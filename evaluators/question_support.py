"""Question-aware support: which of two alternatives named in the prompt the grounding favours.

A question such as "Who was born first, Pablo Trapero or Aleksander Ford?" or "Which director is
American, Mark L. Lester or Ken Loach?" offers two options. A response that picks one can use only
grounded words and still be wrong: it picked the option the grounding does not support. This
module finds the two options (the capitalized names on either side of "or"), decides which one
the grounding supports, and tells which one a response claim chose:

* date comparisons (first/older/earlier/before vs younger/later/after/most recent): the first
  year of the first grounding sentence that names each option; the earlier (or later) wins;
* property questions (anything else): the question's remaining content words (e.g. "American",
  "bass guitar") counted in the grounding sentences that name each option but not the other; the
  option with more of them wins. No decision on a tie.

Pure Python, no model; it is a lexical heuristic and abstains (None) whenever it is unsure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from evaluators.claims import Token, named_entities, tokenize

EARLIER_WORDS = frozenset("first older oldest earlier earliest elder eldest before sooner".split())
LATER_WORDS = frozenset("younger youngest later latest newer newest recent recently last after".split())
_YEAR_RE = re.compile(r"(?<!\d)(1\d{3}|20\d{2})(?!\d)")
_OR_RE = re.compile(r"\bor\b")
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


def find_alternatives(prompt: str | None, chunks: list[tuple[str, frozenset[str]]]) -> Alternatives | None:
    """The prompt's two options and which one the grounding supports; None when the prompt offers
    no two named options or the grounding does not decide between them. `chunks` are the grounding
    sentences as (text, content norms)."""
    if not isinstance(prompt, str) or " or " not in prompt:
        return None
    m = None
    for m in _OR_RE.finditer(prompt):
        pass
    if m is None:
        return None
    tokens = tokenize(prompt)
    names = named_entities(tokens, prompt)
    before = [n for n in names if n.end <= m.start()]
    after = [n for n in names if n.start >= m.end()]
    if not before or not after:
        return None
    a, b = before[-1], after[0]
    # the two names must sit on either side of "or": "Pablo Trapero or Aleksander Ford", "... or The Wolfhounds"
    if prompt[a.end:m.start()].strip(" ,\"'") or prompt[m.end():b.start].strip(" ,\"'") not in ("", "the", "The"):
        return None
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
            for i in mentions[k]:
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
