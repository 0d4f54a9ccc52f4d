"""Hate and harassment: a learned profanity model plus lexicons of slurs and insults.

The learned layer is the linear SVM that ``alt-profanity-check`` ships (TF-IDF over
words, five sigmoid-calibrated folds). Calling it through scikit-learn costs ~10 ms a
sentence, so its weights are read once and scored here directly (~0.05 ms), with the
same result (see build_model.py for the shipped weights file). Profanity alone is not abuse ("this is fucking good"), so a sentence is
flagged when the model is confident, or when it is moderately sure *and* the text aims
at someone (second person, an insult noun, a slur, obfuscated swearing).
"""

from __future__ import annotations

import math
import re
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from archivist_safety.findings import HATE, Finding

WEIGHTS = Path(__file__).with_name("profanity_svm.npz")  # rebuilt by build_model.py

# Words that are slurs in some of their uses: what the learned head reads as its "slur"
# feature (classifier.py), so this pattern stays as the head was trained with it until the
# head is rebuilt. Several are everyday words too ("mustard", "leotard", "maggots",
# "snowflakes", "dykes" along a river, "a chink in the armour"), so matching it alone
# decides nothing: see SLURS.
SLUR_WORDS = re.compile(
    r"\b(?:n[i1!][g9]{2}(?:er|a|ah|uh|az|ers|as)s?|f[a@]g(?:got)?s?|f[a@]gg[o0]ts?|dykes?|trann(?:y|ies)|k[i1]kes?|sp[i1]cs?|"
    r"ch[i1]nks?|g[o0]{2}ks?|wetbacks?|beaners?|ragheads?|towelheads?|sand ?n[i1]gg\w*|camel ?jockeys?|coons?|jungle ?bunn(?:y|ies)|"
    r"porch ?monkeys?|golliwogs?|pakis?|gypos?|pikeys?|retards?|retarded|\w+tards?|\w+turds?|maggots?|mongoloids?|spastics?|sp[a@]zz?(?:es)?|"
    r"shemales?|heebs?|kaffirs?|dindus?|zipperheads?|slant ?eyes?|redskins?|squaws?|half[- ]?breeds?|negroe?s?|muzzies?|"
    r"libtards?|trumptards?|demonrats?|rethuglicans?|feminazis?|femoids?|foids?|incels?|cucks?|soyboys?|snowflakes?|sheeple|"
    r"commie scum|nazi scum|libt[a@]rds?)\b"
)
# The slurs with no everyday meaning: found, they decide alone (always blocked, never
# softened by the head). Left out of SLUR_WORDS's list: words with an innocent sense
# (fag, dyke, chink, coon, golliwog, retard(ed), any word ending in -tard or -turd,
# maggot, mongoloid, spastic, spaz, redskin, squaw, half-breed, negro, incel, cuck,
# snowflake, sheeple), which the head weighs in context instead. Until December 2026
# the whole list decided alone, and "Spread the mustard on the bread." was blocked as hate.
SLURS = re.compile(
    r"\b(?:n[i1!][g9]{2}(?:er|a|ah|uh|az|ers|as)s?|f[a@]gg?[o0]ts?|trann(?:y|ies)|k[i1]kes?|sp[i1]cs?|"
    r"g[o0]{2}ks?|wetbacks?|beaners?|ragheads?|towelheads?|sand ?n[i1]gg\w*|camel ?jockeys?|jungle ?bunn(?:y|ies)|"
    r"porch ?monkeys?|pakis?|gypos?|pikeys?|shemales?|heebs?|kaffirs?|dindus?|zipperheads?|slant ?eyes?|muzzies?|"
    r"libt[a@]rds?|trumptards?|demonrats?|rethuglicans?|feminazis?|femoids?|foids?|soyboys?|commie scum|nazi scum)\b"
)
INSULTS = re.compile(
    r"\b(?:idiots?|idiotic|morons?|moronic|imbeciles?|cretins?|dimwits?|dumbass(?:es)?|dumb ?fucks?|dipshits?|halfwits?|nitwits?|"
    r"stupid|dumb|dumber|dumbest|losers?|scum(?:bags?)?|lowlifes?|low-lifes?|degenerates?|jerks?|assholes?|arseholes?|a-holes?|"
    r"bastards?|bitch(?:es|y)?|dicks?|dickheads?|pricks?|twats?|cunts?|douche(?:bags?)?|wankers?|tossers?|pos|pieces? of (?:shit|crap|garbage|trash)|"
    r"shitheads?|shitbags?|fuckheads?|fuckers?|motherfuckers?|mf|sob|sons? of (?:a )?bitch(?:es)?|whores?|sluts?|hoes?|skanks?|thots?|"
    r"clowns?|buffoons?|fools?|foolish|pathetic|disgusting|vile|repulsive|despicable|worthless|useless|clueless|brainless|brain ?dead|"
    r"lunatics?|psychos?|maniacs?|nut ?jobs?|nutcases?|freaks?|creeps?|creepy|perverts?|pedos?|paedos?|pedophiles?|paedophiles?|"
    r"traitors?|treasonous|liars?|lying|crooks?|crooked|frauds?|hypocrites?|cowards?|cowardly|thugs?|savages?|animals|vermin|parasites?|"
    r"leeches|cockroaches|rats|pigs?|swine|subhumans?|trash|garbage|filth|filthy|scumbags?|sleaze(?:bags?|balls?)?|slimeballs?|weasels?|"
    r"snakes?|satan(?:ic|ists?)?|demonic|evil|wicked|corrupt|senile|demented|dementia|brainwashed|cult(?:ists?)?|sheep|puppets?|"
    r"fascists?|nazis?|commies?|communists?|marxists?|socialists?|terrorists?|jihadis?|jihadists?|racists?|bigots?|bigoted|"
    r"misogynists?|homophobes?|homophobic|ugly|fat ?ass(?:es)?|fatsos?|lard ?ass(?:es)?|whiny|crybab(?:y|ies)|karens?|simps?|"
    r"shills?|grifters?|goons?|stooges?|hacks?|incompetent|ignorant|ignoramus(?:es)?|dolts?|dunces?|numbskulls?|blockheads?|"
    r"deplorables?|losers|sucks?|shut up|stfu|gtfo|go to hell|burn in hell|rot in hell|go die|get lost|screw (?:you|him|her|them)|"
    r"f(?:uck|\*+ck|\*+|k|u|ck)? (?:you|u|him|her|them|off|that|this|the|all|joe|biden|trump)\b|fjb|lgb|let'?s go brandon|"
    r"damn (?:you|him|her|them)|to hell with)\b"
)
OBFUSCATED = re.compile(
    r"(?:\bf[\W_]{1,4}(?:c?k|ck|king|kin|ked|ker|cking)\b|\bf[u*@#$%&!]+[c*@#$%&!]*k\w*|\bs[h*@#$%&!][i*@#$%&!1]t\w*|"
    r"\ba[s*@$]{2}\w*|\bb[i*!1]t?ch\w*|\bp\s?u\s?[s$]\s?[s$]\s?y|\bc[u*]nt\w*|\bd[i*!1]ck\w*|\ba\*\*\w*|\bsh%t|\bf&@k|\bpu\$\$y|"
    r"\bb\*+\w*|\bf\s+u\s+c\s+k|\bs\s+h\s+i\s+t)",
    re.I,
)
QUESTION = re.compile(r"\s*(?:what|how|why|where|when|who|which|is|are|can|could|should|do|does|did)\b[^.!]*\?\s*$")
TARGETED = re.compile(
    r"\b(?:you|you're|youre|ur|u|your|yall|y'all|you all|he's|she's|they're|he is|she is|they are|this guy|that guy|these people|"
    r"those people|these guys|this idiot|his|her|their|them|him)\b"
)


class ProfanityModel:
    """The ``alt-profanity-check`` linear model, scored without scikit-learn's per-call overhead."""

    _lock = threading.Lock()
    _loaded: tuple[dict[str, tuple[float, tuple[float, ...]]], tuple[float, ...], tuple[tuple[float, float], ...]] | None = None
    _stop_words: frozenset[str] = frozenset()

    TOKEN = re.compile(r"(?u)\b\w\w+\b")

    @classmethod
    def _load(cls) -> None:
        with cls._lock:
            if cls._loaded is not None:
                return
            import numpy as np

            with np.load(WEIGHTS) as data:
                words = str(data["words"]).split("\n")
                idf = data["idf"].tolist()
                coefs = [tuple(row) for row in data["coefs"].tolist()]
                intercepts = tuple(data["intercepts"].tolist())
                sigmoids = tuple(tuple(row) for row in data["sigmoids"].tolist())
            table = dict(zip(words, zip(idf, coefs)))
            cls._loaded = (table, intercepts, sigmoids)

    @classmethod
    def available(cls) -> bool:
        try:
            cls._load()
        except Exception:
            return False
        return True

    _profane: tuple[str, ...] = ()

    @classmethod
    def profane_words(cls) -> tuple[str, ...]:
        """The words the model weighs as most offensive, most offensive first."""
        if not cls._profane:
            if cls._loaded is None:
                cls._load()
            assert cls._loaded is not None
            table = cls._loaded[0]
            weight = {w: sum(c) / len(c) for w, (_, c) in table.items()}
            cls._profane = tuple(sorted((w for w, v in weight.items() if v >= 2.0 and w.isalpha()), key=lambda w: -weight[w]))
        return cls._profane

    @classmethod
    def probability(cls, text: str) -> float:
        """P(offensive) for ``text``, as ``profanity_check.predict_prob`` computes it."""
        if cls._loaded is None:
            cls._load()
        assert cls._loaded is not None
        table, intercepts, sigmoids = cls._loaded
        counts = Counter(t for t in cls.TOKEN.findall(text.lower()) if t in table)
        dots: list[float]
        if not counts:
            dots = list(intercepts)
        else:
            norm = 0.0
            dots = [0.0] * len(intercepts)
            for word, tf in counts.items():
                idf, ws = table[word]
                x = tf * idf
                norm += x * x
                for k, w in enumerate(ws):
                    dots[k] += x * w
            norm = math.sqrt(norm)
            dots = [d / norm + b for d, b in zip(dots, intercepts)]
        probs = [1.0 / (1.0 + math.exp(a * d + b)) for d, (a, b) in zip(dots, sigmoids)]
        return sum(probs) / len(probs)


_SYMBOLS = "*@#$%&!"
_MASKED = re.compile(r"[a-z][a-z*@#$%&!]*[*@#$%&!][a-z*@#$%&!]*", re.I)
_SPACED = re.compile(r"\b(?:[a-z][ .]){2,}[a-z]\b", re.I)
STEMS = ("fuck", "cunt", "bitch", "shit", "nigg", "fagg", "pussy", "whore", "slut")
_INNOCENT = frozenset({"scunthorpe", "shitake", "shiitake", "cocktail"})
_STEM = re.compile(r"\b\w*?(" + "|".join(STEMS) + r")\w*", re.I)


def deobfuscate(text: str) -> str:
    """``text`` with masked or spaced-out swear words written plainly, for the lexical
    models: "f*@king" -> "fucking", "PU$$Y" -> "pussy", "p u s s y" -> "pussy", and a
    swear word glued into another word is added after it ("libcunts" -> "libcunts cunt").
    A masked word becomes the most offensive word of the profanity model's vocabulary
    that fits its letters; anything else is left as it is."""
    if not any(c in text for c in _SYMBOLS) and not _SPACED.search(text) and not _STEM.search(text):
        return text
    profane = ProfanityModel.profane_words()

    def unmask(m: re.Match[str]) -> str:
        token = m.group(0)
        body = token.rstrip("!")  # "f*ck!" keeps its exclamation mark
        if body.lower() in profane or len(body) < 3:
            return token
        pattern = re.compile("".join("." if c in _SYMBOLS else re.escape(c) for c in body.lower()))
        for word in profane:  # most offensive first
            if pattern.fullmatch(word):
                return word + token[len(body):]
        return token

    def unspace(m: re.Match[str]) -> str:
        letters = re.sub(r"[ .]", "", m.group(0)).lower()
        for start in range(len(letters) - 2):  # "a p u s s y": the word may start late
            if letters[start:] in profane:
                return " ".join(letters[:start]) + (" " if start else "") + letters[start:]
        return m.group(0)

    def stem(m: re.Match[str]) -> str:
        word = m.group(0)
        return word if word.lower() in profane or word.lower() in _INNOCENT else f"{word} {m.group(1).lower()}"

    out = _MASKED.sub(unmask, text)
    out = _SPACED.sub(unspace, out)
    return _STEM.sub(stem, out)


def toxicity_score(text: str, learned: bool = True, slur_words: bool = True) -> tuple[float, str]:
    """A hate/harassment score in 0..1 and the rule that gave it. With ``slur_words``
    every word of :data:`SLUR_WORDS` scores as a slur, as the learned head's feature was
    made (classifier.py); without, only :data:`SLURS` do (the rules-only fallback, where
    no head weighs the context)."""
    text = deobfuscate(text)
    low = text.lower()
    if SLURS.search(low) or (slur_words and SLUR_WORDS.search(low)):
        return 0.95, "slur"
    p = ProfanityModel.probability(text) if learned else 0.0
    insult = INSULTS.search(low)
    obfuscated = OBFUSCATED.search(text)
    targeted = TARGETED.search(low)
    if insult and (targeted or p >= 0.3):
        return max(0.8, p), "insult"
    if obfuscated:
        return max(0.75, p), "obfuscated_profanity"
    if p >= 0.85 and not (QUESTION.match(low) and p < 0.97):
        return p, "learned"
    if p >= 0.5 and (targeted or insult):
        return p, "learned_targeted"
    if insult:
        return 0.6, "insult_word"
    return p * 0.5, "learned"


def find_toxicity(text: str, threshold: float = 0.6, learned: bool = True) -> Iterator[Finding]:
    score, kind = toxicity_score(text, learned, slur_words=False)
    if score >= threshold:
        yield Finding(HATE, 0, len(text), round(score, 3), kind)
