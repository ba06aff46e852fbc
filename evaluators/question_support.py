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
* count questions ("which genus has more species?"): the number right before the counted noun in
  each option's sentences; the larger (or smaller, for fewer/less/least) wins;
* property questions (anything else): the question's remaining content words (e.g. "American",
  "bass guitar") counted in the grounding sentences that name each option but not the other; the
  option with more of them wins. No decision on a tie.

It also tells which word a name is attached to ("directed by Robert Zemeckis and written by Neil
Gaiman"), so that a claim giving a grounded name another name's role ("directed by Neil Gaiman") is
caught (`misattributed`).

Pure Python, no model; it is a lexical heuristic and abstains (None) whenever it is unsure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from genobs.evaluators.claims import IRREGULAR_FORMS, Span, Token, named_entities, tokenize

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
    how: str  # "date", "count" or "property"
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
        parts = [part for name in names for part in split_at_and(name, prompt)]
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
    counted = _count_question(tokens)
    if counted is not None:  # "Which genus has more species, Fir or Chelone?"
        noun, more = counted
        counts = [_count_of(noun, [chunks[i][0] for i in sorted(mentions[k], key=lambda i: i in mentions[1 - k])]) for k in (0, 1)]
        if counts[0] is not None and counts[1] is not None and counts[0] != counts[1]:
            larger = 0 if counts[0] > counts[1] else 1
            return Alternatives((a.text, b.text), own, larger if more else 1 - larger, "count")
        return None
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


MORE_WORDS = frozenset("more most greater larger".split())
FEWER_WORDS = frozenset("fewer fewest less least smaller".split())
# The counted noun follows the comparative within this many tokens ("more species", "the most
# band members"); the count precedes the noun within this many tokens ("a genus of four species").
COUNT_WINDOW = 3


def _count_question(tokens: list[Token]) -> tuple[str, bool] | None:
    """("speci", True) for "Which genus has more species ...?": the counted noun and whether more
    wins; None when the question compares no count."""
    for k, tok in enumerate(tokens):
        if tok.lower in MORE_WORDS or tok.lower in FEWER_WORDS:
            noun = next((t for t in tokens[k + 1:k + 1 + COUNT_WINDOW] if t.is_content), None)
            if noun is not None and noun.number is None and not noun.is_capitalized:
                return noun.norm, tok.lower in MORE_WORDS
    return None


def _count_of(noun: str, sentences: list[str]) -> float | None:
    """The number right before `noun` in the first of `sentences` that has one ("48–56 species":
    48, the lower bound; "four species": 4)."""
    for text in sentences:
        toks = tokenize(text)
        for k, tok in enumerate(toks):
            if tok.norm != noun:
                continue
            numbers = [t.number for t in toks[max(0, k - COUNT_WINDOW):k] if t.number is not None]
            if numbers:
                try:
                    return min(float(n) for n in numbers)
                except ValueError:
                    continue
    return None


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
    names = [part for name in named_entities(tokens, text, sentence_start) for part in split_at_and(name, text)]
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


def split_at_and(name: Span, text: str) -> list[Span]:
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


# --- Which word a name is attached to: "directed by Robert Zemeckis and written by Neil Gaiman" ---
# A name's *governor* is the word right before it ("directed" for Robert Zemeckis, "written" for
# Neil Gaiman, "Ph.D." for Northwestern University in "his B.A. from Millikin University and his
# Ph.D. at Northwestern University") with at most LINK_GAP function words between, together with
# the kind of link: "by" (the agent), "of", another preposition ("in", "at", "from", ...: one
# kind), or none. A name in a list ("A, B and C", "A (B) and C") has the link of the list's first
# name; a possessive ("Bruce Springsteen's album") is attached to what follows it, not linked.
LINK_GAP = 2
_LIST_WORDS = frozenset({"and", "or", "&"})
# (a "." inside a sentence ends an abbreviation: "his Ph.D. at Northwestern University")
_CLAUSE_BREAK_RE = re.compile(r"[;:!?\u2013\u2014]")
_LIST_BREAK_RE = re.compile(r"[,()\[\]\"“”]")
_POSSESSIVE_RE = re.compile(r"^['’]s?\b")
_WH_WORDS = frozenset({"who", "whom", "what", "which"})
_DETERMINERS = frozenset("the a an his her its their our my your this that these those".split())
_OWN_KIND_PREPOSITIONS = frozenset({"by", "of"})
_PREPOSITIONS = frozenset("in at on from to for with into onto under over near within during as".split())
Link = tuple[str, str]  # (governor norm, link kind: "by" / "of" / "prep" / "")


@dataclass(frozen=True)
class NameLink:
    governor: Link  # the word the name is attached to and how
    name: frozenset[str]  # the name's content words
    sentence: int  # index of the grounding sentence (chunk)


def _link_kind(function_words: list[str]) -> str:
    """The kind of link from the function words between a governor and its name (nearest the
    governor first): "by", "of", "prep" (any other preposition), "" (none: "starring X")."""
    for w in function_words:
        if w in _OWN_KIND_PREPOSITIONS:
            return w
        if w in _PREPOSITIONS:
            return "prep"
    return ""


def _is_governor(tok: Token, text: str) -> bool:
    """A word a name can be attached to: a content word that is not a number, or the last letter
    of an initialism ("B.A. from Millikin University")."""
    if tok.is_content:
        return tok.number is None
    return len(tok.text) == 1 and tok.text.isupper() and text[tok.end:tok.end + 1] == "."


def name_governors(tokens: list[Token] | tuple[Token, ...], text: str, names: list[Span]) -> list[Link | None]:
    """For each of `names` (in order of appearance, within `tokens`): the word it is attached to
    and how, or None. `text` is the text the token offsets point into."""
    index = {t.start: i for i, t in enumerate(tokens)}
    name_ending_at: dict[int, int] = {}
    out: list[Link | None] = []
    for n, name in enumerate(names):
        first = index.get(name.tokens[0].start)
        governor: Link | None = None
        if first is not None:
            j, skipped, in_list = first - 1, [], False
            while j >= 0:
                between = text[tokens[j].end:tokens[j + 1].start]
                if _CLAUSE_BREAK_RE.search(between):
                    break
                listed = in_list or bool(_LIST_BREAK_RE.search(between))
                tok = tokens[j]
                if j in name_ending_at:  # "A and B", "A, B", "A (B)": B is listed with A; "B.A. from X": X's governor is "B.A."
                    if listed:
                        governor = out[name_ending_at[j]]
                    elif not (_POSSESSIVE_RE.match(text[tok.end:]) or tok.text.endswith(("'s", "’s"))):
                        governor = (tok.norm if tok.is_content else tok.lower, _link_kind(skipped[::-1]))
                    break
                if _LIST_BREAK_RE.search(between):
                    break
                if tok.lower in _LIST_WORDS:
                    in_list = True
                elif tok.is_content or _is_governor(tok, text):
                    if not in_list and _is_governor(tok, text):
                        governor = (tok.norm if tok.is_content else tok.lower, _link_kind(skipped[::-1]))
                    break
                else:
                    if tok.lower not in _DETERMINERS:
                        skipped.append(tok.lower)
                    if len(skipped) > LINK_GAP:
                        break
                j -= 1
            name_ending_at[index[name.tokens[-1].start]] = n
        if _POSSESSIVE_RE.match(text[name.end:]) or name.tokens[-1].text.endswith(("'s", "’s")):
            governor = None  # "Bruce Springsteen's breakthrough album": the name modifies what follows
        out.append(governor)
    return out


def is_past_verb(tok: Token) -> bool:
    """A past-tense or participle form ("wrote", "directed"): the verb of "The Kingsmen wrote ..."."""
    return tok.is_content and not tok.is_capitalized and tok.number is None and (
        tok.lower.endswith("ed") or tok.norm != tok.lower and tok.lower in IRREGULAR_FORMS
    )


def question_governor(prompt_tokens: list[Token] | tuple[Token, ...], prompt: str) -> Link | None:
    """The word the question's answer slot is attached to, and how: ("direct", "by") in "...,
    directed by who?", ("consist", "of") in "consisted of what wrestler ...", ("write", "by") in
    "Who wrote the song ...?" (the answer is the agent); None when the slot is not right after a
    word."""
    for k, tok in enumerate(prompt_tokens):
        if tok.lower == "who" and k == 0 and len(prompt_tokens) > 1 and is_past_verb(prompt_tokens[1]):
            return (prompt_tokens[1].norm, "by")
        if tok.lower not in _WH_WORDS or k == 0:
            continue
        j, skipped = k - 1, []
        while j >= 0:
            between = prompt[prompt_tokens[j].end:prompt_tokens[j + 1].start]
            if _CLAUSE_BREAK_RE.search(between) or _LIST_BREAK_RE.search(between):
                break
            t = prompt_tokens[j]
            if t.is_content:
                kind = _link_kind(skipped[::-1])
                return (t.norm, kind) if kind else None  # "directed by who", not "Beowulf who"
            if t.lower not in _DETERMINERS:
                skipped.append(t.lower)
            if len(skipped) > LINK_GAP:
                break
            j -= 1
    return None


def misattributed(
    claim_links: list[tuple[Link, Span]], links: tuple[NameLink, ...], sentence_norms: list[frozenset[str]]
) -> list[Span]:
    """Names the claim attaches to a word ("directed by Neil Gaiman", "Ph.D. from Millikin
    University", "The Kingsmen wrote ...") that the grounding attaches to another full name in a
    sentence where this name has a different role ("directed by Robert Zemeckis and written by Neil
    Gaiman"). Abstains when the grounding also attaches the word to this name somewhere, or to no
    other full name (a demonym is not one: "performed by American country artist X")."""
    out = []
    for governor, name in claim_links:
        norms = frozenset(t.norm for t in name.tokens if t.is_content)
        if not norms:
            continue
        same = [link for link in links if link.governor == governor]
        # the same name, in full or in part ("Gaiman" for "Neil Gaiman"; not "Northwestern
        # University" for "Millikin University")
        if not same or any(link.name <= norms or norms <= link.name for link in same):
            continue
        if any(len(link.name) >= 2 and norms <= sentence_norms[link.sentence] for link in same):
            out.append(name)
    return out
