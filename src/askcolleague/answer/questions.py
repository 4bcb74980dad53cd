"""What kind of question this is: attribution ("who said X": its statement's author comes first)
or expertise (every other question), the statement an attribution question asks about, and the
answer types ("how many", "when") a sentence should match."""
from __future__ import annotations

import re

QUANTITY_QUESTION = re.compile(r"\b(?:how\s+(?:many|much|long|often|fast|quickly|soon|big|large|old|far|high|low)|"
                               r"what\s+(?:time|date|day|year|percentage|share|size|number|amount|price|cost)|"
                               r"when|which\s+(?:year|month|day|date|version))\b", re.I)

QUANTITY = re.compile(r"\d|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|twelve|twenty|thirty|hundred|"
                      r"once|twice|daily|weekly|monthly|yearly|annually|quarterly|january|february|march|april|may|"
                      r"june|july|august|september|october|november|december|monday|tuesday|wednesday|thursday|"
                      r"friday|saturday|sunday)\b", re.I)

# "Who said / wrote / proposed ... X": the person who made the statement is the answer.
_ATTRIBUTION_VERBS = (
    "said|says|say|wrote|writes|write|proposed|proposes|propose|suggested|suggests|suggest|asked|asks|ask|"
    "argued|argues|argue|reported|reports|report|mentioned|mentions|raised|raises|claimed|claims|"
    "recommended|recommends|pointed out|points out|noticed|notices|complained|complains|objected|objects|"
    "posted|posts|came up with|comes up with|brought up|brings up|floated|pitched|flagged|flags|warned|warns|"
    "predicted|promised|announced|announces|insisted|thought|think|believes|believed|disagreed|agreed|"
    "found|discovered|wants|wanted|added|explained|described|built|created|fixed|volunteered|offered|"
    "first|originally|initially|started the (?:thread|discussion)|opened the (?:thread|issue)")

ATTRIBUTION = re.compile(
    r"^\W*(?:so\s+|and\s+|but\s+)?(?:who|which\s+(?:person|colleague|engineer|one))\s+"
    r"(?:(?:was|is)\s+(?:it\s+)?(?:that\s+|who\s+)?)?(?:did\s+|had\s+|has\s+|have\s+)?"
    r"(?:first\s+|originally\s+|actually\s+|initially\s+|really\s+)?"
    rf"(?:{_ATTRIBUTION_VERBS})\b"
    r"|\bwhose\s+(?:idea|suggestion|proposal|question|comment|point|argument|claim|plan)\b"
    r"|\bwho\s+(?:had|came up with|gave)\s+the\s+(?:idea|suggestion|proposal)\b"
    r"|\b(?:credit|attributed?)\s+(?:for|to)\b", re.I)

_ASKING = re.compile(r"^\W*(?:who|which\s+\w+)\s+(?:(?:was|is)\s+(?:it\s+)?(?:that\s+|who\s+)?)?"
                     r"(?:first\s+|originally\s+)?(?:asked|asks|ask)\b|\bwhose\s+question\b", re.I)

def statement_of(question: str) -> str:
    """What an attribution question asks about, without its "who said ..." frame: "Who proposed
    running the old and the new cache side by side?" → "running the old and the new cache side by
    side". Searched instead of the question, it is closer in meaning to the sentence that says it."""
    m = ATTRIBUTION.search(question)
    if not m or m.start() > 3:
        return question
    rest = re.sub(r"^(?:that|about|whether|if|for|to|on|the idea (?:that|of)|it)\s+", "", question[m.end():].strip(" ,:"))
    rest = rest.rstrip(" ?")
    return rest if len(rest.split()) >= 3 else question

def question_kind(question: str) -> str:
    """``attribution`` for "who said / wrote / proposed / asked ... X" (the statement's author comes
    first), else ``expertise`` ("who knows about X", "who should I ask", and every other question:
    the people with the broadest relevant evidence, cited authors leading)."""
    return "attribution" if ATTRIBUTION.search(question) else "expertise"

# A sentence that opens by agreeing ("Agreed, …", "+1", "Same here", "As Kenji said, …") reacts to
# what someone else said: for "who said X" it is an echo, not the statement's source.
AGREEMENT = re.compile(r"^\W*(?:agreed|i\s+agree|\+1|same\s+here|exactly|absolutely|seconded|good\s+(?:point|idea|call)|"
                       r"as\s+(?:\w+\s+){0,3}(?:said|says|suggested|wrote|mentioned|pointed\s+out|proposed))\b", re.I)
