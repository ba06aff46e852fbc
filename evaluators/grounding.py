"""Lexical evidence for one response claim against the grounding (context documents + reference).

For each claim: which content tokens the grounding does not contain, which numbers/dates and
named entities are absent from it, which multi-word names are grounded word by word but never
written together, whether the claim's negation disagrees with the grounding sentence that shares
most of its words, and whether it picks the option of the prompt that the grounding does not
favour (evaluators/question_support.py). The prompt is read for its options and the role its
question asks about, never as grounding: words a response repeats from it must be in the grounding
like any other (`stated_tokens` adds what a dialogue response states beyond checkable facts).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

from genobs.evaluators.claims import DISCOURSE_WORDS, NEGATIONS, POLITENESS_WORDS, Claim, Span, Token, named_entities, split_sentences, tokenize
from genobs.evaluators.antonyms import antonym_contradictions
from genobs.evaluators.question_support import (
    Alternatives,
    NameLink,
    both_subjects,
    is_past_verb,
    chosen_option,
    find_alternatives,
    misattributed,
    name_governors,
    not_for_both,
    question_governor,
    split_at_and,
    subject_pair,
)

# A multi-word name must appear in the grounding (or the prompt) in order, with at most this many
# other word between two of its words ("Lee Ranaldo" for "Lee Mark Ranaldo").
NAME_GAP = 1


# First/second-person words: a sentence addressed to the user or about the speaker.
_PERSONAL = frozenset("i me my we us our you your yours let".split())
# Discourse words that state something (stance, opinion, experience: "I think", "I love it", "a great
# show"), unlike the acknowledgements that open a dialogue turn ("Sure!", "Right,", "Wow,").
ACKNOWLEDGEMENTS = frozenset("sure true right wow definitely absolutely totally".split())
STATED_DISCOURSE = DISCOURSE_WORDS - ACKNOWLEDGEMENTS
# First-person singular words: the speaker talking about itself.
_SPEAKER = frozenset("i me my mine myself".split())
# A conversational sentence has at most this many content words (besides politeness words).
CONVERSATIONAL_WORDS = 2


def _starts_sentence(claim: Claim, response: str) -> bool:
    before = response[:claim.start].rstrip()
    return not before or before[-1] in ".!?:;…\n"


def is_conversational(claim: Claim, grounding: "Grounding") -> bool:
    """The claim asserts nothing checkable: no number and no name, and either a question back to
    the user ("Is there anything else you'd like to know?") or a short pleasantry / offer
    addressed to the user ("Sorry for the trouble.", "Hope that helps!", "Feel free to reply if
    you have more questions.") with at most CONVERSATIONAL_WORDS content words, none of them in
    the grounding."""
    toks = claim.tokens
    if any(t.number is not None or (k > 0 and t.is_capitalized and t.is_content) for k, t in enumerate(toks)):
        return False
    if claim.is_question:
        return True
    polite = any(t.lower in POLITENESS_WORDS for t in toks)
    personal = any(t.lower.partition("'")[0] in _PERSONAL for t in toks)
    if not (polite or personal):
        return False
    content = [t for t in toks if t.is_content and t.lower not in POLITENESS_WORDS]
    return len(content) <= CONVERSATIONAL_WORDS and not any(t.norm in grounding.norms for t in content)


# "not only X but Y", "not just X": adds to X rather than denying it.
_ADDITIVE_AFTER_NOT = frozenset({"only", "just", "merely", "simply"})


def _is_negation(tok: Token, following: Token | None = None) -> bool:
    if following is not None and following.lower in _ADDITIVE_AFTER_NOT:
        return False
    return tok.lower in NEGATIONS or tok.lower.endswith("n't")


def _negations(tokens: Sequence[Token]) -> list[int]:
    """Indices of the tokens that deny something ("not", "never", "isn't"; not "not only")."""
    # one pass without a call per token: this runs on every grounding sentence and claim
    out: list[int] = []
    last = len(tokens) - 1
    for i, t in enumerate(tokens):
        low = t.lower
        if (low in NEGATIONS or low.endswith("n't")) and not (i < last and tokens[i + 1].lower in _ADDITIVE_AFTER_NOT):
            out.append(i)
    return out


# A grounding sentence with one of these among its first PRONOUN_WINDOW words is about the same
# subject as the sentence before it.
_CONTINUING_PRONOUNS = frozenset("he she it they his her its their".split())
PRONOUN_WINDOW = 4

# Words this close after "not"/"never"/"cannot" are what the negation denies ("not refundable").
NEGATION_SCOPE = 4


_SCOPE_BREAK = frozenset(",;:.!?()[]\u2013\u2014")


def _negated_norms(tokens: Sequence[Token], text: str, negations: list[int] | None = None) -> frozenset[str]:
    """Content words within NEGATION_SCOPE tokens after a negation, up to the end of its clause
    (punctuation): in "Deletion isn't immediate: there's a 14-day grace period" only "immediate"
    is denied. `text` is the text the token offsets point into."""
    out: set[str] = set()
    for i in _negations(tokens) if negations is None else negations:
        prev = tokens[i]
        for t in tokens[i + 1:i + 1 + NEGATION_SCOPE]:
            if _SCOPE_BREAK.intersection(text[prev.end:t.start]):
                break
            if t.is_content:
                out.add(t.norm)
            prev = t
    return frozenset(out)


@dataclass(frozen=True)
class GroundingChunk:
    """One sentence of a context document or of the reference: the unit claims are compared with."""

    text: str
    source: str  # "context[0]", "reference"
    norms: frozenset[str]
    negated: bool
    negated_norms: frozenset[str]  # content words within NEGATION_SCOPE tokens after a negation


@dataclass(frozen=True)
class Grounding:
    """One sample's grounding. What only some claims need (name positions, the passages about one
    subject, name roles, the prompt's options) is computed on first use: most responses never
    need it, and building it for every sample was most of the lexical scorer's time."""

    norms: frozenset[str]  # normalized content tokens of all grounding texts
    all_norms: frozenset[str]  # normalized tokens of all grounding texts, function words included
    numbers: frozenset[str]  # canonical numbers of all grounding texts
    chunks: tuple[GroundingChunk, ...]
    documents: tuple[str, ...]  # the grounding texts themselves (context docs, reference)
    sources: tuple[str, ...]  # each document's name: "context[0]", ..., "reference"
    doc_norms: tuple[frozenset[str], ...]  # content words of each grounding text
    prompt_norms: frozenset[str]
    prompt_numbers: frozenset[str]
    prompt: str | None = None
    prompt_tokens: tuple[Token, ...] = ()
    doc_tokens: tuple[tuple[Token, ...], ...] = ()  # each grounding text's tokens
    chunk_tokens: tuple[tuple[int, tuple[Token, ...]], ...] = ()  # per chunk: (document index, its tokens)

    @cached_property
    def chunk_norms(self) -> list[frozenset[str]]:
        return [c.norms for c in self.chunks]

    @cached_property
    def sentence_frequency(self) -> dict[str, int]:
        """content token -> number of chunks containing it"""
        return dict(Counter(n for chunk in self.chunks for n in chunk.norms))

    @cached_property
    def text_norms(self) -> tuple[list[str | None], ...]:
        """Per grounding text, then the prompt: each token's normalized form, None for a function
        word (a name's words are content words, _name_words; the Nones keep the places, which
        measure the gaps)."""
        return tuple([t.norm if t.is_content else None for t in toks] for toks in [*self.doc_tokens, self.prompt_tokens])

    def positions(self, norm: str) -> list[tuple[int, int]]:
        """(text index, token index) of each occurrence of the content word in grounding + prompt:
        list.index scans in C, cheaper than indexing every word of every grounding up front."""
        out: list[tuple[int, int]] = []
        for ti, norms in enumerate(self.text_norms):
            i = -1
            try:
                while True:
                    i = norms.index(norm, i + 1)
                    out.append((ti, i))
            except ValueError:
                pass
        return out

    @cached_property
    def passages(self) -> tuple[frozenset[str], ...]:
        """content words of runs of sentences about one subject: a sentence and the sentences
        after it that continue with a pronoun ("She was born in Warsaw")"""
        passages: list[set[str]] = []
        prev_doc = -1
        for doc_index, toks in self.chunk_tokens:
            if doc_index == prev_doc and any(t.lower in _CONTINUING_PRONOUNS for t in toks[:PRONOUN_WINDOW]):
                passages[-1].update(t.norm for t in toks if t.is_content)
            else:
                passages.append({t.norm for t in toks if t.is_content})
            prev_doc = doc_index
        return tuple(frozenset(p) for p in passages)

    @cached_property
    def links(self) -> tuple[NameLink, ...]:
        """each grounding name and the word it is attached to ("directed by X")"""
        links: list[NameLink] = []
        for k, (doc_index, toks) in enumerate(self.chunk_tokens):
            doc = self.documents[doc_index]
            names = [part for ent in named_entities(toks, doc, sentence_start=True) for part in split_at_and(ent, doc)]
            links += [
                NameLink(governor, frozenset(t.norm for t in name.tokens if t.is_content), k)
                for governor, name in zip(name_governors(toks, doc, names), names)
                if governor is not None
            ]
        return tuple(links)

    @cached_property
    def alternatives(self) -> Alternatives | None:
        """the prompt's two options and the one the grounding supports"""
        return find_alternatives(self.prompt, [(c.text, c.norms) for c in self.chunks])

    @cached_property
    def subjects(self) -> tuple[frozenset[str], frozenset[str]] | None:
        """the prompt's two named subjects ("A and B"); with "both" in it ("Are Gin and tonic and
        Paloma both ...?") its first two names"""
        if not self.prompt_tokens:
            return None
        lowers = {t.lower for t in self.prompt_tokens}
        return subject_pair(self.prompt, self.prompt_tokens, adjacent_only="both" not in lowers)

    @cached_property
    def answer_governor(self) -> str | None:
        """the word the question's answer slot is attached to ("directed by who?")"""
        return question_governor(self.prompt_tokens, self.prompt) if self.prompt_tokens else None

    @property
    def subject_passages(self) -> tuple[frozenset[str], ...]:
        """Units about one subject: whole documents when there are several (retrieved documents
        are each about one subject), else the passages of the single text."""
        return self.doc_norms if len(self.documents) > 1 else self.passages


def build_grounding(context: Sequence[str] | None, reference: str | None, prompt: str | None) -> Grounding | None:
    """The grounding of one sample, or None when it has none (no non-blank context or reference)."""
    docs: list[tuple[str, str]] = [
        (f"context[{i}]", doc) for i, doc in enumerate(context or []) if isinstance(doc, str) and doc.strip()
    ]
    if isinstance(reference, str) and reference.strip():
        docs.append(("reference", reference))
    if not docs:
        return None
    numbers: set[str] = set()
    chunks: list[GroundingChunk] = []
    chunk_tokens: list[tuple[int, tuple[Token, ...]]] = []
    p_toks = tokenize(prompt) if isinstance(prompt, str) else []
    doc_tokens = [tokenize(doc) for _, doc in docs]  # each text tokenized once
    doc_norms: list[frozenset[str]] = []
    for doc_index, ((source, doc), all_toks) in enumerate(zip(docs, doc_tokens)):
        i = 0
        for s, e in split_sentences(doc):
            while i < len(all_toks) and all_toks[i].start < s:
                i += 1
            j = i
            while j < len(all_toks) and all_toks[j].start < e:
                j += 1
            toks = tuple(all_toks[i:j])
            i = j
            negations = _negations(toks)
            chunks.append(
                GroundingChunk(
                    text=doc[s:e],
                    source=source,
                    norms=frozenset(t.norm for t in toks if t.is_content),
                    negated=bool(negations),
                    negated_norms=_negated_norms(toks, doc, negations) if negations else frozenset(),
                )
            )
            chunk_tokens.append((doc_index, toks))
        numbers.update(t.number for t in all_toks if t.number is not None)
        doc_norms.append(frozenset(t.norm for t in all_toks if t.is_content))
    return Grounding(
        norms=frozenset().union(*doc_norms),
        all_norms=frozenset(t.norm for toks in doc_tokens for t in toks),
        numbers=frozenset(numbers),
        chunks=tuple(chunks),
        documents=tuple(doc for _, doc in docs),
        sources=tuple(source for source, _ in docs),
        doc_norms=tuple(doc_norms),
        prompt_norms=frozenset(t.norm for t in p_toks if t.is_content),
        prompt_numbers=frozenset(t.number for t in p_toks if t.number is not None),
        prompt=prompt if isinstance(prompt, str) else None,
        prompt_tokens=tuple(p_toks),
        doc_tokens=tuple(tuple(t) for t in doc_tokens),
        chunk_tokens=tuple(chunk_tokens),
    )


def name_found(words: Sequence[tuple[str, int]], grounding: Grounding) -> bool:
    """The name's normalized words, given with their token index in the name, occur in one
    grounding text (or the prompt) in order, at most NAME_GAP other words further apart than in the
    name: "Lake Erie State Park" is not found in "... Lake Erie ... Presque Isle State Park", "Lee
    Ranaldo" is found in "Lee Mark Ranaldo", "C. V. Raman" in "Sir C. V. Raman"."""
    if len(words) < 2:
        return all(w in grounding.norms or w in grounding.prompt_norms for w, _ in words)
    if not all(w in grounding.norms or w in grounding.prompt_norms for w, _ in words):
        return False
    tails = [(set(grounding.positions(w)), i - prev_i) for (w, i), (_, prev_i) in zip(words[1:], words)]
    for text_index, pos in grounding.positions(words[0][0]):
        current = pos
        for follow, step in tails:
            nxt = next(
                (current + d for d in range(1, step + NAME_GAP + 1) if (text_index, current + d) in follow), None
            )
            if nxt is None:
                break
            current = nxt
        else:
            return True
    return False


# Titles before a name ("Sir C. V. Raman", "Dr. Jane Smith"): the grounding may name the person
# without them, so they are not words of the name that must be grounded.
TITLES = frozenset(
    "sir dame lord lady mr mrs ms miss dr prof professor rev reverend saint st king queen prince princess".split()
)


def _name_words(ent: Span) -> list[tuple[str, int]]:
    """(norm, index in the name) of the name's content words, less leading titles."""
    words = [(t.norm, i) for i, t in enumerate(ent.tokens) if t.is_content]
    while len(words) > 1 and ent.tokens[words[0][1]].lower in TITLES:
        words.pop(0)
    return words


def _name_written(ent: Span, words: list[tuple[str, int]], grounding: Grounding) -> bool:
    """The name is in the grounding as written (`name_found`); a run that joins names with "and"
    ("Brightwave Assist and Meet") also when each name on either side is."""
    if name_found(words, grounding):
        return True
    cuts = [i for i, t in enumerate(ent.tokens) if t.lower == "and"]
    if not cuts:
        return False
    bounds = [-1, *cuts, len(ent.tokens)]
    parts = [[(w, i) for w, i in words if lo < i < hi] for lo, hi in zip(bounds, bounds[1:])]
    return all(name_found(part, grounding) for part in parts if part)


def token_units(names: Sequence[Span]) -> dict[int, float]:
    """Token start -> 1/n for each of the n content words of a multi-word name: a name is one
    reference, so "R Adams Cowley was also an astronaut" adds two facts (the person, "astronaut"),
    not three words of which one is unsupported."""
    out: dict[int, float] = {}
    for ent in names:
        content = [t for t in ent.tokens if t.is_content]
        if len(content) > 1:
            out.update((t.start, 1.0 / len(content)) for t in content)
    return out


def compound_units(claim: Claim, unsupported: Sequence[Token], text: str) -> dict[int, float]:
    """Token start -> 1/n for each word of a run of n adjacent unsupported lower-case words
    ("a 14-day grace period" against "can be restored for 14 days"): one phrase of the response's
    own, one unit, as a multi-word name is one; otherwise a two-word paraphrase weighs twice a
    one-word one."""
    bad = {t.start for t in unsupported if not t.is_capitalized and t.number is None}
    out: dict[int, float] = {}
    run: list[Token] = []
    toks = claim.tokens
    for k, t in enumerate(toks + (None,)):
        if t is not None and t.start in bad and (not run or not text[run[-1].end:t.start].strip(" -")):
            run.append(t)
            continue
        if len(run) > 1:
            out.update((r.start, 1.0 / len(run)) for r in run)
        run = [t] if t is not None and t.start in bad else []
    return out


@dataclass
class LexicalEvidence:
    checked_tokens: int  # content tokens, less those taken from the prompt that the grounding lacks
    # content tokens not in the prompt (what the claim adds to the question), counted in facts: a
    # multi-word name is one unit (see `token_units`)
    new_units: float = 0.0
    unit: dict[int, float] = field(default_factory=dict)  # token start -> its share of a unit (1/words of its name), if not 1
    unsupported: list[Token] = field(default_factory=list)
    missing_numbers: list[Token] = field(default_factory=list)
    missing_entities: list[Span] = field(default_factory=list)
    negation_mismatch: bool = False
    best_chunk: int | None = None  # index of the grounding chunk sharing most content tokens
    unmatched_names: list[Span] = field(default_factory=list)  # words all grounded, but not together
    wrong_option: str | None = None  # the prompt's option it picked when the grounding favours the other
    contradicted: list[Token] = field(default_factory=list)  # unsupported words whose opposite the grounding states
    not_for_both: list[Token] = field(default_factory=list)  # "both ..." words grounded for only one of the two
    conversational: bool = False  # a pleasantry or a question back to the user: not a claim
    misattributed: list[Span] = field(default_factory=list)  # names attached to a word the grounding gives another name

    @property
    def unsupported_ratio(self) -> float:
        """Unsupported share of the claim's *new* content (words not in the prompt), in units."""
        return sum(self.weight(t) for t in self.unsupported) / self.new_units if self.new_units else 0.0

    def weight(self, tok: Token) -> float:
        """The token's share of a fact: 1, or 1/n for each of the n content words of a name."""
        return self.unit.get(tok.start, 1.0)

    @property
    def checkable(self) -> bool:
        """Does the claim assert anything that the grounding could support or not?"""
        return not self.conversational and (
            self.checked_tokens > 0
            or bool(self.missing_numbers)
            or bool(self.missing_entities)
            or self.wrong_option is not None
            or bool(self.misattributed)
        )


def _grounded(tok: Token, grounding: Grounding) -> bool:
    """The word, or the number it spells ("second" for a grounding's "2nd"/"two"), is in the grounding."""
    return tok.norm in grounding.norms or (tok.number is not None and tok.number in grounding.numbers)


def lexical_evidence(claim: Claim, grounding: Grounding, response: str) -> LexicalEvidence:
    if is_conversational(claim, grounding):
        return LexicalEvidence(checked_tokens=0, conversational=True)
    content = [t for t in claim.tokens if t.is_content]
    # The prompt's words are not grounding: an answer that repeats the question ("X was founded by
    # Y") must find X in the grounding too, as a dialogue response that repeats the user's turn
    # must (BEGIN). (They were once left out of the counts as a premise: that hid answers that
    # repeat a false premise, and it lowered the ranking on HaluEval and on BEGIN alike.)
    checked = content
    unsupported = [t for t in checked if not _grounded(t, grounding)]

    # Numbers and names are facts: repeating them from the prompt does not ground them.
    missing_numbers = [
        t for t in claim.tokens if t.number is not None and not _grounded(t, grounding)
    ]
    names = named_entities(claim.tokens, response, sentence_start=_starts_sentence(claim, response))
    name_words = [_name_words(ent) for ent in names]
    unit = token_units(names)
    unit.update(compound_units(claim, unsupported, response))
    missing = [any(w not in grounding.norms for w, _ in words) for words in name_words]
    missing_entities = [ent for ent, miss in zip(names, missing) if miss]
    unmatched_names = [
        ent for ent, words, miss in zip(names, name_words, missing)
        if not miss and not _name_written(ent, words, grounding)
    ]
    claim_links = _claim_links(claim, names, missing, response, grounding)
    # the grounding's name roles are built only for a claim that attaches a name to a word
    misattributed_names = misattributed(claim_links, grounding.links, grounding.chunk_norms) if claim_links else []
    wrong_option = None
    alt = grounding.alternatives
    if alt is not None:
        picked = chosen_option(claim.tokens, alt)
        if picked is not None and picked != alt.supported:
            wrong_option = alt.options[picked]
    claim_norms = {t.norm for t in content}
    best, best_overlap, best_weight = None, 0, 0.0
    for i, chunk in enumerate(grounding.chunks):
        shared = claim_norms & chunk.norms
        # the sentence sharing most of the claim's words is the one it restates; among those, rarer
        # words (in fewer grounding sentences) say more
        weight = sum(1.0 / grounding.sentence_frequency[n] for n in shared)
        if (len(shared), weight) > (best_overlap, best_weight):
            best, best_overlap, best_weight = i, len(shared), weight
    negation_mismatch = False
    # Only a claim that restates a grounding sentence (3+ shared content words) can contradict it.
    if best is not None and best_overlap >= 3:
        claim_denied = _negated_norms(claim.tokens, response)
        chunk = grounding.chunks[best]
        if _negations(claim.tokens):
            # the claim denies words that the sentence states ("never won a Nobel Prize"); a negation
            # about words the sentence lacks ("you don't need to do anything") contradicts nothing
            negation_mismatch = not chunk.negated and bool(claim_denied & chunk.norms)
        else:  # the grounding denies something: does the claim assert the denied words?
            negation_mismatch = bool(chunk.negated_norms & claim_norms)
    contradicted = antonym_contradictions(unsupported, claim_norms, grounding.chunk_norms)
    # "Both are American authors": each grounded word must hold for each of the two subjects
    pair = both_subjects(response, claim.tokens, _starts_sentence(claim, response), grounding.subjects)
    both_gaps = not_for_both(claim.tokens, pair, grounding.subject_passages, grounding.norms) if pair else []
    return LexicalEvidence(
        checked_tokens=len(checked),
        new_units=sum(unit.get(t.start, 1.0) for t in content),
        unit=unit,
        unsupported=unsupported,
        missing_numbers=missing_numbers,
        missing_entities=missing_entities,
        negation_mismatch=negation_mismatch,
        best_chunk=best,
        unmatched_names=unmatched_names,
        wrong_option=wrong_option,
        contradicted=contradicted,
        not_for_both=both_gaps,
        misattributed=misattributed_names,
    )


def _claim_links(
    claim: Claim, names: list[Span], missing: list[bool], response: str, grounding: Grounding
) -> list[tuple[tuple[str, str], Span]]:
    """(word, name) for each grounded name of the claim and the word it is attached to ("directed
    by Neil Gaiman"); in an answer that is only names ("Neil Gaiman."), the word the question's
    answer slot is attached to ("... directed by who?")."""
    parts = [part for ent, miss in zip(names, missing) if not miss for part in split_at_and(ent, response)]
    if not parts:
        return []
    in_names = {t.start for part in parts for t in part.tokens}
    bare = all(t.start in in_names for t in claim.tokens if t.is_content)
    index = {t.start: i for i, t in enumerate(claim.tokens)}
    out = []
    for governor, part in zip(name_governors(claim.tokens, response, parts), parts):
        if governor is None and bare:
            governor = grounding.answer_governor
        if governor is not None:
            out.append((governor, part))
        # the name as the subject of the past-tense verb right after it: "The Kingsmen wrote the song"
        after = index[part.tokens[-1].start] + 1
        if after < len(claim.tokens):
            verb = claim.tokens[after]
            if is_past_verb(verb) and not SEPARATOR_RE.search(response[part.end:verb.start]):
                out.append(((verb.norm, "by"), part))
    return out


SEPARATOR_RE = re.compile(r"[,;:()\[\]\"“”.!?]")


def stated_tokens(claim: Claim, grounding: Grounding, lexical: LexicalEvidence) -> tuple[list[Token], list[Token]]:
    """(stated, unsupported) words of the claim beyond its checked content, for the response's
    `unsupported_share`: what a response *says* is more than its checkable facts. Stance, opinion
    and experience words ("I think", "I love it", "a great show"; claims.DISCOURSE_WORDS) are
    stated, and so is the content of a conversational sentence (a personal remark, a question back
    to the user) less its politeness words; a pleasantry or a closing offer ("Is there anything
    else I can help with?") states nothing. A stated word is supported when the grounding uses it
    ("also known as"), except in a question: a question asks, it does not state what the grounding
    says ("Do you like video game music?" against "Video game music is the soundtrack ..."), which
    is what attribution (BEGIN, AIS) means by "not fully attributable"."""
    # the speaker talking about itself ("Me too!", "yes I do", "my niece skis"): a persona claim that
    # no grounding backs; in a pleasantry ("I'm sorry for the trouble", "I hope that helps") it is manners
    polite = any(t.lower in POLITENESS_WORDS for t in claim.tokens)
    persona = [] if polite else [t for t in claim.tokens if t.lower.partition("'")[0] in _SPEAKER]
    if polite and (lexical.conversational or claim.is_question):
        return [], []  # a pleasantry or a closing offer ("Is there anything else you'd like to know?")
    if lexical.conversational or claim.is_question:
        stated = [
            t for t in claim.tokens
            if (t.is_content or t.lower in STATED_DISCOURSE) and t.lower not in POLITENESS_WORDS
        ]
        if claim.is_question:
            return stated, stated
    else:
        stated = [t for t in claim.tokens if not t.is_content and t.lower in STATED_DISCOURSE]
    unsupported = [t for t in stated if t.norm not in grounding.all_norms and not _grounded(t, grounding)]
    return stated + persona, unsupported + persona
