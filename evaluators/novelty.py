"""The response's novel content: the share of its content words that the grounding never uses.

This is the plain lexical-novelty signal that knowledge-grounded dialogue needs most (BEGIN's
authors: metrics of attribution lean on it): a response that says much the grounding does not
is rarely "fully attributable". Unlike `unsupported_share` it counts every content word the same,
in every sentence (questions and remarks included; the scorer leaves out pleasantries and closing
offers, which state nothing), and no word is excused as a paraphrase. Words are compared by their normalized form (lower case, accents folded, stemmed,
irregular verbs mapped: claims.normalize_word), and a number by its value ("two" = "2").
"""

from __future__ import annotations

from collections.abc import Iterable

from genobs.evaluators.claims import GLUE_IDIOMS, GLUE_WORDS, Token
from genobs.evaluators.grounding import Grounding

# English function words: scikit-learn's ENGLISH_STOP_WORDS (the Glasgow Information Retrieval
# Group's list, BSD-licensed), copied so the scorer does not import scikit-learn. It also holds
# the number words, which are compared by value instead.
FUNCTION_WORDS: frozenset[str] = frozenset(
    """
    a about above across after afterwards again against all almost alone along already also
    although always am among amongst amoungst amount an and another any anyhow anyone anything
    anyway anywhere are around as at back be became because become becomes becoming been before
    beforehand behind being below beside besides between beyond bill both bottom but by call can
    cannot cant co con could couldnt cry de describe detail do done down due during each eg eight
    either eleven else elsewhere empty enough etc even ever every everyone everything everywhere
    except few fifteen fifty fill find fire first five for former formerly forty found four from
    front full further get give go had has hasnt have he hence her here hereafter hereby herein
    hereupon hers herself him himself his how however hundred i ie if in inc indeed interest into
    is it its itself keep last latter latterly least less ltd made many may me meanwhile might mill
    mine more moreover most mostly move much must my myself name namely neither never nevertheless
    next nine no nobody none noone nor not nothing now nowhere of off often on once one only onto
    or other others otherwise our ours ourselves out over own part per perhaps please put rather re
    same see seem seemed seeming seems serious several she should show side since sincere six sixty
    so some somehow someone something sometime sometimes somewhere still such system take ten than
    that the their them themselves then thence there thereafter thereby therefore therein thereupon
    these they thick thin third this those though three through throughout thru thus to together
    too top toward towards twelve twenty two un under until up upon us very via was we well were
    what whatever when whence whenever where whereafter whereas whereby wherein whereupon wherever
    whether which while whither who whoever whole whom whose why will with within without would yet
    you your yours yourself yourselves
    """.split()
)


def novel_share(tokens: Iterable[Token], grounding: Grounding) -> float:
    """Share of the response's content words (not FUNCTION_WORDS, nor claims.GLUE_WORDS in any
    inflection: "takes" in a restatement is no novelty) whose normalized form is in no
    grounding text (function words of the grounding included: "well" supports "well"); a number
    counts as present when the grounding has its value. 0.0 for a response without content words."""
    total = novel = 0
    norms, numbers = grounding.all_norms, grounding.numbers
    prev = ""
    for t in tokens:
        idiom = t.lower in GLUE_IDIOMS.get(prev, ())
        prev = t.lower
        if t.lower in FUNCTION_WORDS or t.lower in GLUE_WORDS or idiom:
            continue
        total += 1
        if t.norm not in norms and (t.number is None or t.number not in numbers):
            novel += 1
    return novel / total if total else 0.0
