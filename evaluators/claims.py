"""Split text into claims and tokens, with character offsets into the original text.

Used by the hallucination evaluator for both the response (claims to check) and the grounding
(context documents and reference answer, which claims are checked against). Pure Python, no model.

A *claim* is a sentence or a semicolon-separated clause. A *token* is a run of letters/digits
with its normalized form (lower case, accents folded, possessive dropped, Porter-stemmed), so
"published" in a response matches "publishes" in a context document.
"""

from __future__ import annotations

import re
import unicodedata
import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

import Stemmer  # PyStemmer: the Snowball/Porter stemmers in C (nltk's pure-Python Porter is ~50x slower)

# Function words: never count as claim content. Deliberately hand-written rather than taken from
# scikit-learn's list, which also holds content words ("system", "fire", "bill") and the number
# words that the number check needs.
STOPWORDS: frozenset[str] = frozenset(
    """
    a an the and or but if then else so because as than that this these those there here
    of in on at to from by for with about into onto over under between among through during
    before after above below up down out off again further once also too very just only even
    still yet already ever both each every either neither all any some such own same other another
    everyone everybody everywhere
    is am are was were be been being have has had having do does did doing done
    will would shall should can could may might must ought
    i me my mine myself we us our ours ourselves you your yours yourself yourselves
    he him his himself she her hers herself it its itself they them their theirs themselves
    what which who whom whose when where why how whatever whoever whichever
    not no nor never none nothing nobody cannot n't
    yes yeah yep okay ok oh ah um uh well hi hello hey thanks thank please sorry
    s t d ll m re ve
    actually really quite rather perhaps maybe probably certainly indeed simply basically
    much many more most less least few several lot lots
    while whereas although though however therefore thus hence since until unless
    into via per upon within without toward towards against across along around
    let lets get gets got make makes made like one ones
    """.split()
)

# Conversational, opinion and hedging words: a dialogue response uses them without asserting a
# checkable fact ("I really love that movie, it's great", "it usually arrives in 2 days"). They
# are neither support nor evidence of hallucination.
DISCOURSE_WORDS: frozenset[str] = frozenset(
    """
    think thought know knew known believe guess suppose imagine hope wish wonder feel felt
    say said tell told mean means meant sound sounds seem seems seemed
    love loved loves like liked likes enjoy enjoyed enjoys prefer favorite favourite fan fans
    great good nice cool awesome amazing interesting fun funny wonderful fantastic excellent
    pretty kind sort thing things stuff something anything everything way ways
    sure true right wow definitely absolutely totally
    usually typically generally normally often sometimes currently
    """.split()
)

# Paraphrase glue: the closed classes of English that carry the grammar of a restatement, not its
# facts, in every inflection (a word list matched on surface forms, so "takes" is glue while the
# stemmer's "take"/"taking" collisions with other words cannot make content words glue):
# * light verbs, whose object or complement carries the meaning ("takes 4-7 days", "make sure",
#   "gave a talk", "go back", "keep in mind"): do, make, take, get, give, have, go, come, keep, put, let;
# * catenative / semi-modal verbs, which frame another verb ("need to", "want to", "try to", "able to");
# * adverbial particles of phrasal verbs ("go back", "put aside", "move ahead");
# * verbs of naming and regarding, which restate a name or a description the grounding gives
#   ("babies are called preemies" for "known as preemies"; "considered one of the most ...");
# * the discourse-marker verb "note" ("Note that ...", "please note").
# A restatement in other words ("Standard delivery to Canada takes 4-7 business days" for
# "Standard: 4 to 7 business days") adds these without adding a fact; the words they bind
# (numbers, names, nouns) stay checked. Not picked from any data set: standard grammar classes.
GLUE_WORDS: frozenset[str] = frozenset(
    """
    do does did done doing make makes made making take takes took taken taking
    get gets got gotten getting give gives gave given giving have has had having
    go goes went gone going come comes came coming keep keeps kept keeping put puts putting
    let lets letting
    need needs needed needing want wants wanted wanting try tries tried trying able
    back away forward ahead aside apart
    note
    call calls called calling refer refers referred referring consider considers considered considering
    regard regards regarded dub dubs dubbed term termed
    """.split()
)
# Light-verb idioms whose second word would otherwise read as a stance word: "make sure" / "make
# certain" is "ensure" (an instruction), not the speaker being sure of something.
GLUE_IDIOMS: dict[str, frozenset[str]] = {
    form: frozenset({"sure", "certain"}) for form in ("make", "makes", "made", "making")
}

# Evaluative and experiential words among DISCOURSE_WORDS ("I love that movie", "it's a great
# show", "I wonder if ..."): they assert nothing that a grounding sentence could state, so they
# are no claim's content (a claim about a fact stays checkable with "great" in it), but what a
# response says is also what it *states*: a response made of opinions is not attributable to its
# grounding. The hallucination score's `unsupported_share` counts them as stated and unsupported
# unless the grounding itself uses the word (see `stated_tokens`).
OPINION_WORDS: frozenset[str] = frozenset(
    """
    love loved loves liked likes enjoy enjoyed enjoys prefer favorite favourite fan fans
    great good nice cool awesome amazing interesting fun funny wonderful fantastic excellent
    wish wonder imagine feel felt
    """.split()
)

# Politeness and conversation-management words of dialogue ("Thanks for reaching out!", "Sorry for
# the trouble.", "Hope that helps!", "Good question.", "Feel free to reply"). A sentence built
# from them asserts nothing about the grounding; see `is_conversational` in evaluators/grounding.py.
# They stay ordinary content words inside a sentence that does make a claim.
POLITENESS_WORDS: frozenset[str] = frozenset(
    """
    thanks thank thankful sorry apologies apologize apologise apology glad happy pleased welcome
    pleasure appreciate appreciated patience understanding hope hopefully help helps helped helpful
    assist question questions reach reaching reply trouble inconvenience worry worries problem
    free else anything further
    """.split()
)

# Contracted endings: "we'll", "you'd", "it's", "they're", "I'm", "we've", "isn't".
_CONTRACTION_ENDINGS = frozenset({"s", "d", "ll", "m", "re", "ve", "t"})

NEGATIONS: frozenset[str] = frozenset(
    {"not", "no", "never", "nobody", "neither", "nor", "cannot", "n't"}
)

_CARDINALS = {
    "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20,
    "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80,
    "ninety": 90, "hundred": 100, "thousand": 1000, "million": 1000000, "billion": 1000000000, "trillion": 1000000000000,
    "dozen": 12, "twice": 2, "double": 2, "triple": 3, "half": 0.5,
}
_ORDINALS = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7,
    "eighth": 8, "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12,
}
# "one" is left out on purpose: it is far more often a pronoun ("one of the best") than a count.
NUMBER_WORDS: dict[str, str] = {w: f"{v:g}" for w, v in {**_CARDINALS, **_ORDINALS}.items()}

# Lower-case words that may sit inside a multi-word name: "Bank of America", "Armin van Buuren".
_NAME_CONNECTORS = frozenset({"of", "the", "van", "von", "de", "da", "del", "der", "la", "le", "du", "and", "&"})

_TOKEN_RE = re.compile(
    r"\d{1,3}(?:,\d{3})+(?:\.\d+)?"  # 1,000 / 12,500.5
    r"|\d+(?:\.\d+)?[^\W\d_]*"  # 1997, 3.5, 2nd, 1990s, 30A
    r"|[^\W\d_]+(?:['’][^\W\d_]+)*"  # words, incl. don't / Arthur's
    r"|n['’]t"
)
_NUMBER_RE = re.compile(r"^(\d[\d,]*(?:\.\d+)?)")
# A claim ends at . ! ? ; or a line break. Sentence-final punctuation must be followed by
# white space, or, in run-together text (documents concatenated without a space: "century.First",
# "in 2013.Reggie Yates", '"Puss in Boots".Puss in Boots is'), be preceded by two lower-case
# letters or digits, or one of them and a closing quote/bracket, and followed by a capitalized word.
_BOUNDARY_RE = re.compile(
    r"(?<=[.!?…])[\"'”’)\]]*\s+(?=[\"'“‘(\[]?[A-Z0-9À-Ý])"
    r"|(?<=[a-z0-9]{2}[.!?])(?=[\"'“‘]?[A-Z][a-z])"
    r"|(?<=[a-z0-9][\"'”’)\]][.!?])(?=[\"'“‘]?[A-Z][a-z])"
    r"|;\s+"
    r"|\s*\n+\s*"
)
_NAME_BREAK_RE = re.compile(r"[,;:()\[\]]")
# A sentence with two clauses makes two claims: "X was born in 1867, and she later worked on Y".
# Without a comma only "and"/"but" before a subject pronoun starts a clause: before a possessive
# ("Maurice Hines and his brother were ...") it joins a noun phrase.
_CLAUSE_RE = re.compile(
    r",\s+(?=(?:and|but|while|whereas|although|though|which|who)\s)"
    r"|\s+(?=(?:and|but)\s+(?:he|she|it|they|we|i|you|this|that)\s)",
    re.IGNORECASE,
)
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof sr jr st mt ft vs inc ltd co corp no vol fig gen col lt sgt rev hon ca cf al "
    "jan feb mar apr jun jul aug sep sept oct nov dec u.s u.k e.g i.e a.m p.m approx est dept univ".split()
)

_STEMMERS = threading.local()  # PyStemmer objects are not thread-safe: one per thread


def _stem(word: str) -> str:
    stemmer = getattr(_STEMMERS, "porter", None)
    if stemmer is None:
        stemmer = _STEMMERS.porter = Stemmer.Stemmer("porter")
    return stemmer.stemWord(word)


class Token(NamedTuple):
    text: str
    start: int  # char offset into the text that was tokenized (the response, for claims)
    end: int
    norm: str  # lower-cased, accent-folded, possessive-stripped, stemmed
    lower: str
    is_content: bool  # carries meaning: not a stop/discourse word
    is_capitalized: bool
    number: str | None  # canonical number ("1000", "2", "3.5") when the token is one


@dataclass(frozen=True, slots=True)
class Span:
    text: str
    start: int
    end: int
    tokens: tuple[Token, ...]


@dataclass(frozen=True, slots=True)
class Claim:
    text: str
    start: int
    end: int
    tokens: tuple[Token, ...]
    is_question: bool


def fold(text: str) -> str:
    """Lower-case and strip accents: "Quinceañera" -> "quinceanera"."""
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


# Irregular verb forms -> base form, so that "wrote" matches "written" and "writes" (the stemmer
# only strips regular endings). Forms that are also common other words are left out ("found",
# "left", "saw", "rose", "lay", "felt", "bore", "fell", "spoke", "ground", "bound", "lit", "shot").
_IRREGULAR = {
    form: base
    for base, forms in {
        "arise": "arose arisen", "beat": "beaten", "become": "became", "begin": "began begun", "bite": "bit bitten",
        "blow": "blew blown", "break": "broke broken", "bring": "brought", "build": "built", "buy": "bought",
        "catch": "caught", "choose": "chose chosen", "come": "came", "deal": "dealt", "dig": "dug", "draw": "drew drawn",
        "drive": "drove driven", "eat": "ate eaten", "feed": "fed", "fight": "fought", "flee": "fled", "fly": "flew flown",
        "forget": "forgot forgotten", "forgive": "forgave forgiven", "freeze": "froze frozen", "give": "gave given",
        "go": "went gone", "grow": "grew grown", "hear": "heard", "hide": "hid hidden", "hold": "held", "keep": "kept",
        "lead": "led", "lend": "lent", "lose": "lost", "mean": "meant", "meet": "met", "overcome": "overcame",
        "pay": "paid", "ride": "rode ridden", "ring": "rang rung", "run": "ran", "seek": "sought", "sell": "sold",
        "send": "sent", "shake": "shook shaken", "shine": "shone", "sing": "sang sung", "sink": "sank sunk", "sit": "sat",
        "sleep": "slept", "spend": "spent", "spin": "spun", "stand": "stood", "steal": "stole stolen", "stick": "stuck",
        "strike": "struck stricken", "swear": "swore sworn", "swim": "swam swum", "take": "took taken", "teach": "taught",
        "tear": "tore torn", "throw": "threw thrown", "undertake": "undertook undertaken", "understand": "understood",
        "wake": "woke woken", "wear": "wore worn", "weep": "wept", "win": "won", "withdraw": "withdrew withdrawn",
        "write": "wrote written",
    }.items()
    for form in forms.split()
}

IRREGULAR_FORMS = frozenset(_IRREGULAR)

# Unit abbreviations of specifications and rate limits ("900 req/min", "2 hrs") -> the word, so that
# "900 requests per minute" restates them.
_UNIT_ABBREVIATIONS = {
    "req": "request", "reqs": "request", "min": "minute", "mins": "minute", "sec": "second", "secs": "second",
    "hr": "hour", "hrs": "hour", "yr": "year", "yrs": "year", "wk": "week", "wks": "week",
}


@lru_cache(maxsize=200_000)
def normalize_word(word: str) -> str:
    w = fold(word).replace("’", "'")
    if w.endswith("'s"):
        w = w[:-2]
    elif w.endswith("'"):
        w = w[:-1]
    if w.isdigit():
        return w
    w = _UNIT_ABBREVIATIONS.get(w, w)
    return _stem(_IRREGULAR.get(w, w))


def _canonical_number(lower: str) -> str | None:
    if lower in NUMBER_WORDS:
        return NUMBER_WORDS[lower]
    m = _NUMBER_RE.match(lower)
    if not m:
        return None
    digits = m.group(1).replace(",", "")
    try:
        return f"{float(digits):g}" if "." in digits else str(int(digits))
    except ValueError:
        return None


@lru_cache(maxsize=200_000)
def _word_info(raw: str) -> tuple[str, str, bool, bool, str | None]:
    """(norm, lower, is_content, is_capitalized, number) of one token's text; cached, as the same
    words recur across samples and the grounding is tokenized once per sample."""
    lower = fold(raw).replace("’", "'")
    norm = "n't" if lower == "n't" else normalize_word(raw)
    bare = lower[:-2] if lower.endswith("'s") else lower
    number = _canonical_number(bare)
    is_stop = bare in STOPWORDS or lower in STOPWORDS or bare.endswith("n't") and bare[:-3] in STOPWORDS
    if not is_stop and "'" in lower:  # "we'll", "you'd", "there's": a function word and its clitic
        head, _, tail = lower.partition("'")
        is_stop = head in STOPWORDS and tail in _CONTRACTION_ENDINGS
    is_content = (
        not is_stop and bare not in DISCOURSE_WORDS and bare not in GLUE_WORDS and (len(bare) > 1 or number is not None)
    )
    is_capitalized = raw[:1].isupper() or (raw[:1].isdigit() and any(c.isupper() for c in raw))
    return norm, bare, is_content, is_capitalized, number


# "second" after these words is the unit of time, not the ordinal: "10 requests per second".
_UNIT_SECOND_AFTER = frozenset({"per", "each", "every", "split"})
# Number words that are also units ("a second", "per second") or ranks.
_AMBIGUOUS_NUMBER_WORDS = frozenset({"second"})


# "one" right before one of these is the count 1 ("died one year later"); elsewhere it is a pronoun.
_COUNT_UNITS = frozenset(
    "second minute hour day week month year decade century time mile kilometre kilometer metre meter".split()
)
# "May" after these words, or before a number, is the month (a date to check), not the modal verb.
_MONTH_MAY_AFTER = frozenset({"in", "of", "on", "since", "until", "till", "by", "from", "early", "late", "mid", "during", "last", "next", "this"})


def tokenize(text: str, offset: int = 0) -> list[Token]:
    # the scorer's hottest loop: locals for the lookups, the tuple built without the named
    # constructor's extra call, and the second pass only for the rare "one"/"May"
    tokens: list[Token] = []
    append = tokens.append
    info = _word_info
    new = tuple.__new__
    prev = ""
    rare: list[int] = []
    for m in _TOKEN_RE.finditer(text):
        raw = m.group(0)
        norm, bare, is_content, is_capitalized, number = info(raw)
        if bare in _AMBIGUOUS_NUMBER_WORDS and prev in _UNIT_SECOND_AFTER:
            number = None
        elif bare == "one" or raw == "May":
            rare.append(len(tokens))
        start, end = m.span()
        append(new(Token, (raw, offset + start, offset + end, norm, bare, is_content, is_capitalized, number)))
        prev = bare
    for i in rare:
        tok = tokens[i]
        if tok.lower == "one" and i + 1 < len(tokens) and tokens[i + 1].lower in _COUNT_UNITS:
            tokens[i] = tok._replace(number="1")  # "one year", "one day": a count, unlike "one of the"
        if tok.text == "May" and i > 0 and (
            tokens[i - 1].lower in _MONTH_MAY_AFTER or (i + 1 < len(tokens) and tokens[i + 1].number is not None)
        ):
            tokens[i] = tok._replace(is_content=True)
    return tokens


def _is_abbreviation_end(text: str, end: int) -> bool:
    """True if the '.' just before `end` closes an abbreviation or an initial ("Mr.", "J.")."""
    m = re.search(r"([A-Za-z.]+)\.\s*$", text[max(0, end - 12):end].rstrip())
    if not m:
        return False
    word = m.group(1).lower().rstrip(".")
    return word in _ABBREVIATIONS or len(word) == 1


def split_sentences(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence/clause of `text`, trimmed of surrounding white space."""
    spans: list[tuple[int, int]] = []
    start = 0
    for m in _BOUNDARY_RE.finditer(text):
        if text[m.start() - 1: m.start()] == "." and _is_abbreviation_end(text, m.start()):
            continue
        if m.start() > start:
            spans.append((start, m.start()))
        start = m.end()
    if start < len(text):
        spans.append((start, len(text)))
    out = []
    for s, e in spans:
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if e > s and re.search(r"\w", text[s:e]):
            out.append((s, e))
    return out


def _split_clauses(text: str, start: int, end: int) -> list[tuple[int, int]]:
    pieces, s = [], start
    for m in _CLAUSE_RE.finditer(text, start, end):
        if re.search(r"\w", text[s:m.start()]):
            pieces.append((s, m.start()))
            s = m.end()
    pieces.append((s, end))
    return pieces


# A lead-in label before a colon at the start of a sentence ("In addition:", "Note:", "One more
# thing:", "Good to know as well:") introduces the claim and is not part of it: at most
# LEAD_IN_WORDS words, no digits.
LEAD_IN_WORDS = 5
_LEAD_IN_RE = re.compile(r"[^\W\d_][^:\d\n]{0,60}?:\s+(?=\S)")


def lead_in_end(text: str, start: int, end: int) -> int:
    """Offset where the claim proper starts: after a short lead-in label ending in ':' (or `start`)."""
    m = _LEAD_IN_RE.match(text, start, end)
    if m and len(_TOKEN_RE.findall(m.group(0))) <= LEAD_IN_WORDS:
        return m.end()
    return start


def split_claims(text: str) -> list[Claim]:
    """Sentences, and the clauses of compound sentences, as claims with offsets into `text`. A
    lead-in label ("In addition:") is left out of the claim it introduces."""
    claims = []
    for sent_start, sent_end in split_sentences(text):
        question = text[sent_start:sent_end].rstrip().endswith("?")
        sent_start = lead_in_end(text, sent_start, sent_end)
        for s, e in _split_clauses(text, sent_start, sent_end):
            chunk = text[s:e]
            claims.append(Claim(text=chunk, start=s, end=e, tokens=tuple(tokenize(chunk, s)), is_question=question))
    return claims


_OPENING_QUOTES = frozenset({'"', "“", "‘", "'"})
# A sentence-initial capitalized word alone ("Note that ...", "Verify the ...", "Primary data ...")
# is taken for a name only in a fragment of at most this many content words ("Krakow.", "Paris, France").
FRAGMENT_WORDS = 2


def named_entities(tokens: tuple[Token, ...] | list[Token], source: str, sentence_start: bool = False) -> list[Span]:
    """Capitalized multi-word names (heuristic): runs of capitalized content tokens, allowing
    lower-case connectors inside ("Bank of America"). The first token of a claim counts only if it
    is not a function word ("The", "He", "Yes"); with `sentence_start` (the tokens begin a
    sentence) it also must be followed by another capitalized word ("Marie Curie was ...") or be
    part of a short fragment answer (FRAGMENT_WORDS), since every sentence's first word is
    capitalized ("Deleted files remain ..."); in quotes it is a title and a name ('"Zero" is the
    second single'). `source` is the text the token offsets point into."""
    spans: list[Span] = []
    skip_first = (
        sentence_start
        and len(tokens) > 1
        and not tokens[1].is_capitalized
        and sum(t.is_content for t in tokens) > FRAGMENT_WORDS
        and source[max(0, tokens[0].start - 1):tokens[0].start] not in _OPENING_QUOTES
    )
    run: list[Token] = []

    def flush() -> None:
        while run and not run[-1].is_capitalized:
            run.pop()
        content = [t for t in run if t.is_content]
        if content:
            spans.append(Span(text=source[run[0].start:run[-1].end], start=run[0].start, end=run[-1].end, tokens=tuple(run)))
        run.clear()

    for i, tok in enumerate(tokens):
        if run and _NAME_BREAK_RE.search(source[run[-1].end:tok.start]):
            flush()
        starts_name = tok.is_capitalized and tok.is_content and not tok.text[:1].isdigit() and not (i == 0 and skip_first)
        if starts_name or (tok.is_capitalized and run):
            run.append(tok)
        elif run and tok.lower in _NAME_CONNECTORS and i + 1 < len(tokens) and tokens[i + 1].is_capitalized:
            run.append(tok)
        elif (  # a short number inside a name: "Level 3 Communications", "Apollo 11 Lunar Module"
            run and run[-1].is_content and tok.text.isdigit() and len(tok.text) <= 2
            and i + 1 < len(tokens) and tokens[i + 1].is_capitalized and tokens[i + 1].is_content
            and not _NAME_BREAK_RE.search(source[run[-1].end:tokens[i + 1].start])
        ):
            run.append(tok)
        else:
            flush()
    flush()
    return spans
