"""Contradiction by antonym: a claim word that the grounding lacks while it states the opposite.

"Terenzo is in the southern Italian region" against "... the northern Italian region of
Emilia-Romagna": "southern" is not merely unsupported, the grounding says the opposite. The pairs
are a short hand-written list of general English opposites (directions, superlatives, states),
compared after stemming; no data set's vocabulary. Comparatives and order words (earlier/later,
first/last, older/younger, faster/slower) are left out: both are often true of one sentence
("released later, not compatible with earlier versions"), and the prompt's two-option
comparisons are checked by evaluators/question_support.py. Pure Python, no model.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from genobs.evaluators.claims import Token, normalize_word

_PAIRS = """
north south  northern southern  east west  eastern western  northeast southwest  northwest southeast
largest smallest  biggest smallest  highest lowest  longest shortest  tallest shortest
fastest slowest  maximum minimum  male female  win lose  won lost  winner loser
open closed  public private  enable disable  enabled disabled  include exclude  included excluded
upper lower  inside outside  internal external  domestic international  accept reject
automatic manual  automatically manually  permanent temporary  permanently temporarily
mandatory optional  required optional  available unavailable  possible impossible  legal illegal
add remove  added removed  buy sell  bought sold  success failure  online offline  birth death
""".split()



def _opposites(words: list[str]) -> dict[str, frozenset[str]]:
    """Stemmed word -> its stemmed opposites, from a flat list of pairs."""
    out: dict[str, set[str]] = {}
    for a, b in zip(words[::2], words[1::2]):
        na, nb = normalize_word(a), normalize_word(b)
        out.setdefault(na, set()).add(nb)
        out.setdefault(nb, set()).add(na)
    return {w: frozenset(o) for w, o in out.items()}


ANTONYMS: dict[str, frozenset[str]] = _opposites(_PAIRS)

# The grounding sentence must share at least this many other content words with the claim, so
# that it is about the same thing ("the northern Italian region" for "the southern Italian region").
ANTONYM_CONTEXT = 2


def antonym_contradictions(
    unsupported: Iterable[Token], claim_norms: set[str], sentences: Sequence[frozenset[str]]
) -> list[Token]:
    """The claim's unsupported words whose opposite a grounding sentence states while sharing
    ANTONYM_CONTEXT+ other content words with the claim. `sentences`: content norms per sentence."""
    out = []
    for tok in unsupported:
        opposite = ANTONYMS.get(tok.norm)
        if not opposite:
            continue
        rest = claim_norms - {tok.norm}
        if any(opposite & s and len(rest & s) >= ANTONYM_CONTEXT for s in sentences):
            out.append(tok)
    return out
