"""Hand-labelled grounded / hallucinated responses (dialogue and QA style) for the
hallucination evaluator: the tests check every case, and bench/fit_hallucination.py reports
them next to its fitted weights, so both read the same cases from here."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LabelledCase:
    name: str
    context: str
    prompt: str
    response: str
    label: int  # 1 = hallucinated


K_EIFFEL = ("The Eiffel Tower is a wrought-iron lattice tower on the Champ de Mars in Paris, France. "
            "It is named after the engineer Gustave Eiffel, whose company designed and built the tower "
            "from 1887 to 1889. Locally nicknamed \"La dame de fer\", it was constructed as the centrepiece "
            "of the 1889 World's Fair. The tower is 330 metres tall, about the same height as an 81-storey building.")
K_CURIE = ("Marie Curie was a Polish and naturalised-French physicist and chemist who conducted pioneering research "
           "on radioactivity. She was the first woman to win a Nobel Prize, the first person to win a Nobel Prize "
           "twice, and the only person to win a Nobel Prize in two scientific fields. She was born in Warsaw in 1867. "
           "In 1895 she married the French physicist Pierre Curie, and she shared the 1903 Nobel Prize in Physics with him "
           "and Henri Becquerel. She won the 1911 Nobel Prize in Chemistry.")
K_PYTHON = ("Python is a high-level, general-purpose programming language. Its design philosophy emphasizes code "
            "readability with the use of significant indentation. Guido van Rossum began working on Python in the late "
            "1980s as a successor to the ABC programming language and first released it in 1991 as Python 0.9.0. "
            "Python 2.0 was released in 2000. Python 3.0, released in 2008, was a major revision not completely "
            "backward-compatible with earlier versions. Python 2.7.18, released in 2020, was the last release of Python 2.")
K_REFUND = ("Customers can return most items within 30 days of delivery for a full refund. Items must be unused and in "
            "their original packaging. Refunds are issued to the original payment method within 5 to 7 business days "
            "after we receive the return. Shipping costs are not refundable, except when the item arrived damaged or "
            "defective. Gift cards and perishable goods cannot be returned.")
K_AMAZON = ("The Amazon River in South America is the largest river by discharge volume of water in the world, and "
            "the disputed longest river system in the world in comparison to the Nile. The headwaters of the Apurimac "
            "River on Nevado Mismi had been considered for nearly a century as the Amazon basin's most distant source. "
            "The Amazon has an average discharge of about 215,000 cubic metres per second. The river flows through "
            "Peru, Colombia and Brazil before emptying into the Atlantic Ocean.")
K_BEATLES = ("The Beatles were an English rock band formed in Liverpool in 1960. The core lineup of the band comprised "
             "John Lennon, Paul McCartney, George Harrison and Ringo Starr. They are regarded as the most influential "
             "band of all time. The group's 1967 album Sgt. Pepper's Lonely Hearts Club Band was a critical and "
             "commercial success. The band broke up in 1970.")
K_PLANS = ("Starter plan: two-factor authentication (2FA) with authenticator apps; 10 GB of storage per user. "
           "Business plan: 2FA with authenticator apps and hardware keys; single sign-on (SSO) with SAML; 1 TB of "
           "storage per user.")
K_FILM = ("Quiet River is a 1994 Swedish drama film directed by Anna Lindqvist and written by Tomas Berg and Eva Holm. "
          "It won the Guldbagge Award for Best Film in 1995.")
K_DEGREE = ("Amara Osei is a British chemist who studies battery materials. She received her B.Sc. from Leeds University "
            "and her Ph.D. at Imperial College London, where she now leads a research group.")
K_TEAMS = ("Refund requests are reviewed by the Billing Team and account recovery requests by the Security Team. "
           "Both teams answer within 2 business days.")
K_ORCHESTRAS = ("The Harbor Symphony is an orchestra of 92 musicians founded in 1921. The Valley Philharmonic is a "
                "chamber orchestra of 38 musicians based in the old town hall.")

_RAW_CASES = [
    # --- faithful: paraphrase, multi-sentence, question echo, dialogue filler ---
    ("eiffel-paraphrase", K_EIFFEL, "Tell me about the Eiffel Tower.",
     "The Eiffel Tower stands on the Champ de Mars in Paris. It was built between 1887 and 1889 by the company of "
     "engineer Gustave Eiffel, and it served as the centrepiece of the 1889 World's Fair.", 0),
    ("eiffel-dialogue", K_EIFFEL, "How tall is it?",
     "Oh, it's really tall! It's 330 metres high, roughly as tall as an 81-storey building.", 0),
    ("eiffel-echo-question", K_EIFFEL, "Who is the Eiffel Tower named after?",
     "The Eiffel Tower is named after Gustave Eiffel, the engineer whose company designed and built it.", 0),
    ("curie-paraphrase", K_CURIE, "What is Marie Curie known for?",
     "Marie Curie, a physicist and chemist born in Warsaw, did pioneering work on radioactivity. She became the "
     "first woman ever to receive a Nobel Prize and later won a second one, in Chemistry, in 1911.", 0),
    ("curie-married", K_CURIE, "Who did she marry?",
     "In 1895 she married Pierre Curie, a French physicist, and the two of them shared the 1903 Nobel Prize in Physics "
     "with Henri Becquerel.", 0),
    ("python-history", K_PYTHON, "When was Python first released?",
     "Guido van Rossum started working on Python in the late 1980s and released the first version, 0.9.0, in 1991. "
     "Python 3.0 came out in 2008 and was not fully backward-compatible.", 0),
    ("python-short", K_PYTHON, "What was the last Python 2 release?", "Python 2.7.18, released in 2020.", 0),
    ("refund-policy", K_REFUND, "Can I return my order?",
     "Yes, you can return most items within 30 days of delivery, as long as they are unused and in the original "
     "packaging. Your refund goes back to your original payment method within 5 to 7 business days.", 0),
    ("refund-shipping", K_REFUND, "Will I get my shipping costs back?",
     "Shipping costs are not refundable unless the item arrived damaged or defective.", 0),
    ("amazon-paraphrase", K_AMAZON, "Tell me about the Amazon river.",
     "The Amazon, in South America, carries more water than any other river in the world, around 215,000 cubic "
     "metres per second. It runs through Peru, Colombia and Brazil and empties into the Atlantic Ocean.", 0),
    ("beatles-dialogue", K_BEATLES, "Do you like the Beatles?",
     "I love them! They were an English rock band from Liverpool, formed in 1960, with John Lennon, Paul McCartney, "
     "George Harrison and Ringo Starr. Have you heard Sgt. Pepper's Lonely Hearts Club Band?", 0),
    ("beatles-short", K_BEATLES, "When did they break up?", "They broke up in 1970.", 0),
    # --- hallucinated: one invented number / entity in otherwise faithful text ---
    ("eiffel-wrong-height", K_EIFFEL, "Tell me about the Eiffel Tower.",
     "The Eiffel Tower stands on the Champ de Mars in Paris. It was built between 1887 and 1889 by Gustave Eiffel's "
     "company and is 450 metres tall.", 1),
    ("eiffel-invented-entity", K_EIFFEL, "Who designed the Eiffel Tower?",
     "It was designed by Gustave Eiffel's company. The architect Le Corbusier also drew the first sketches of the tower.", 1),
    ("curie-wrong-year", K_CURIE, "Where was Marie Curie born?",
     "Marie Curie was born in Warsaw in 1872. She did pioneering research on radioactivity.", 1),
    ("curie-wrong-city", K_CURIE, "Where was Marie Curie born?",
     "Marie Curie was born in Krakow in 1867, and she later did pioneering research on radioactivity.", 1),
    ("python-wrong-creator", K_PYTHON, "Who created Python?",
     "Python was created by Dennis Ritchie in the late 1980s as a successor to the ABC language.", 1),
    ("python-invented-fact", K_PYTHON, "When was Python first released?",
     "Guido van Rossum first released Python in 1991. Python 3.0 came out in 2008. Python 4.0 was released in 2023 "
     "with a new type system.", 1),
    ("refund-wrong-days", K_REFUND, "Can I return my order?",
     "Yes, you can return most items within 90 days of delivery for a full refund.", 1),
    ("refund-invented-policy", K_REFUND, "Can I return a gift card?",
     "Gift cards can be returned within 14 days if they have not been used, and we also refund the shipping costs.", 1),
    ("amazon-wrong-countries", K_AMAZON, "Which countries does the Amazon flow through?",
     "The Amazon flows through Peru, Colombia and Brazil, and also crosses Venezuela and Ecuador before reaching the "
     "Atlantic Ocean.", 1),
    ("beatles-wrong-member", K_BEATLES, "Who was in the Beatles?",
     "The Beatles were formed in Liverpool in 1960. The lineup was John Lennon, Paul McCartney, George Harrison and "
     "Pete Townshend.", 1),
    ("beatles-invented-album", K_BEATLES, "What was their most successful album?",
     "Their 1967 album Sgt. Pepper's Lonely Hearts Club Band was a success, and it won six Grammy Awards and sold "
     "40 million copies in its first year.", 1),
    # --- hallucinated: negations / contradictions ---
    ("refund-negation", K_REFUND, "Can I get a refund on perishable goods?",
     "Yes, perishable goods can be returned for a full refund.", 1),
    ("shipping-negation", K_REFUND, "Will I get my shipping costs back?",
     "Yes, shipping costs are always refundable.", 1),
    ("python-negation", K_PYTHON, "Was Python 3 compatible with Python 2?",
     "Python 3.0 was completely backward-compatible with earlier versions.", 1),
    ("curie-negation", K_CURIE, "Did Marie Curie win a Nobel Prize?",
     "Marie Curie never won a Nobel Prize, although she did pioneering research on radioactivity.", 1),
    # --- "both" must hold for each of the two; an opposite word contradicts ---
    ("beatles-both-members", K_BEATLES, "Were John Lennon and Paul McCartney both in the band?",
     "Yes, both John Lennon and Paul McCartney were in the core lineup of the band.", 0),
    ("plans-both-2fa", K_PLANS, "Do Starter and Business both support two-factor authentication?",
     "Both plans include 2FA with authenticator apps, but SSO with SAML comes only with Business.", 0),
    ("plans-both-sso", K_PLANS, "Do Starter and Business both support single sign-on?",
     "Yes, both plans include SSO with SAML.", 1),
    ("python-later-earlier", K_PYTHON, "Was Python 3 compatible with Python 2?",
     "Python 3.0 came out later, in 2008, and it was not fully backward-compatible with earlier versions.", 0),
    ("amazon-antonym", K_AMAZON, "How much water does the Amazon carry?",
     "The Amazon is the smallest river in the world by discharge volume of water.", 1),
    # --- a grounded name in another role than the one the answer gives it; counts in "A or B?" ---
    ("film-director-is-writer", K_FILM, "Who directed Quiet River?", "Tomas Berg directed Quiet River.", 1),
    ("film-bare-writer", K_FILM, "Quiet River, the 1994 drama, was directed by whom?", "Tomas Berg.", 1),
    ("film-director-right", K_FILM, "Who directed Quiet River?",
     "It was directed by Anna Lindqvist, from a script by Tomas Berg and Eva Holm.", 0),
    ("film-writers-right", K_FILM, "Who wrote Quiet River?", "Tomas Berg and Eva Holm wrote it.", 0),
    ("degree-swapped", K_DEGREE, "Where did Amara Osei get her doctorate?",
     "She received her Ph.D. from Leeds University.", 1),
    ("degree-right", K_DEGREE, "Where did Amara Osei get her doctorate?",
     "She earned her Ph.D. at Imperial College London, after a B.Sc. from Leeds University.", 0),
    ("teams-swapped", K_TEAMS, "Who looks at my refund request?",
     "Your refund request is reviewed by the Security Team within 2 business days.", 1),
    ("teams-right", K_TEAMS, "Who looks at my refund request?",
     "Your refund request is reviewed by the Billing Team, and you should hear back within 2 business days.", 0),
    ("count-option-wrong", K_ORCHESTRAS, "Which orchestra has more musicians, the Harbor Symphony or the Valley Philharmonic?",
     "The Valley Philharmonic has more musicians.", 1),
    ("count-option-right", K_ORCHESTRAS, "Which orchestra has more musicians, the Harbor Symphony or the Valley Philharmonic?",
     "The Harbor Symphony has more musicians.", 0),
    # --- hallucinated: uses the question's words but answers with unsupported content ---
    ("echo-question-invented", K_EIFFEL, "What was the Eiffel Tower originally painted?",
     "The Eiffel Tower was originally painted bright yellow by the city of Paris.", 1),
    ("echo-question-invented-2", K_BEATLES, "Who was the Beatles' manager?",
     "The Beatles' manager was Brian Epstein, who discovered them at the Cavern Club.", 1),
]
LABELLED_CASES = [LabelledCase(*c) for c in _RAW_CASES]
