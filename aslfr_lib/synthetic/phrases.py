"""Phrases: the competition's kinds (addresses, phone numbers, URLs, names) plus a few phrases with
the rare characters, so every character of the map occurs; and the supplemental set's sentences."""

from __future__ import annotations

import numpy as np

from aslfr_lib import vocab


def _words(text: str, separator: str | None = None) -> list[str]:
    return text.split(separator)


_STREETS = _words(
    "main oak maple cedar pine elm washington lake hill park sunset river spring highland "
    "franklin lincoln jefferson madison jackson church mill center walnut cherry willow meadow "
    "forest ridge valley king queen victoria harbor bay ocean mountain summit prospect liberty "
    "union grant adams monroe hamilton clinton pleasant chestnut birch aspen poplar sycamore "
    "magnolia dogwood laurel hickory juniper heritage orchard canyon mesa prairie canal bridge "
    "station market college lexington hudson bristol dover salem camden newport ashland "
    "fairview greenwood kingston riverside lakeview hillcrest brookside woodland cypress "
    "sierra vista alta loma rancho del mar palm coral"
)
_STREET_TYPES = _words(
    "street st road rd avenue ave lane ln drive dr boulevard blvd court ct place pl way "
    "circle cir terrace trail parkway highway hwy loop square run path"
)
_DIRECTIONS = _words("north south east west northeast northwest southeast southwest n s e w ne nw")
_FIRST_NAMES = _words(
    "william james john robert michael david mary patricia jennifer linda elizabeth susan "
    "jessica sarah karen nancy lisa betty daniel matthew anthony mark donald steven paul "
    "andrew joshua kenneth kevin brian george emily emma olivia ava sophia mia amelia harper "
    "evelyn abigail ella scarlett grace chloe lily aria zoe nora riley layla ethan noah liam "
    "lucas mason logan oliver elijah aiden jacob carlos maria jose juan ana luis sofia wei "
    "mei hiroshi yuki aisha omar fatima ivan olga priya raj chen kim lee"
)
_LAST_NAMES = _words(
    "smith johnson williams brown jones garcia miller davis rodriguez martinez hernandez "
    "lopez gonzalez wilson anderson thomas taylor moore jackson martin lee perez thompson "
    "white harris sanchez clark ramirez lewis robinson walker young allen king wright scott "
    "torres nguyen hill flores green adams nelson baker hall rivera campbell mitchell carter "
    "roberts lanier okafor kowalski schmidt novak rossi dubois silva tanaka yamamoto patel "
    "singh khan ali cohen murphy obrien mcdonald fischer weber jensen larsen"
)
_WORDS = _words(
    "home shop news blog mail store cloud data photo music games sport travel food health "
    "tech book art design studio market media city green blue star sun moon river stone "
    "light fire wolf bear fox tiger eagle apple orange lemon coffee tea bread pizza garden "
    "house school learn code dev app web net link page info help care team work job money "
    "bank pay card deal sale best top my your our the go get buy find"
)
_PATH_WORDS = _words(
    "index about contact login search home products services blog news help faq cart "
    "account settings profile scales events jobs team docs api support shop gallery "
    "download images video"
)
_TLDS = _words("com com com org net edu gov io co us info biz")
_SYLLABLES = _words(
    "ka ku ha ya la ma ri to ne so be di fu go ji mo pa ra sa ti vo we zu an el in or "
    "un bar kel mon tar vin dor lah zen pik rus"
)
# Sentence pieces for the supplemental set (~500 distinct sentences, as in the real data).
_SUBJECTS = _words(
    (
        "i|you|we|they|he|she|my friend|the cat|the dog|a bird|my mom|his dad|our team|the kids|"
        "the man|a girl|the boy|my sister|her brother|the teacher"
    ),
    "|",
)
_VERBS = _words(  # past tense or modal, so any subject agrees
    "liked|wanted|saw|needed|loved|had|made|found|ate|bought|drew|read|lost|will get|can see|took",
    "|",
)
_OBJECTS = _words(
    (
        "the book|a red apple|the ball|my keys|a new car|the big dog|her phone|the movie|some tea|"
        "a cake|the map|my hat|a gift|the bus|his shoes|the box|a pen|the song|a plan|the door"
    ),
    "|",
)
_TAILS = _words("|today|now|again|at home|at night|every day|too|later|here|there", "|")
_QUESTIONS = _words(
    (
        "where is the bus|can you help me|what time is it|how are you|who is that|why not|"
        "what is your name|are you ok|is it raining|do you like tea|where do you live|"
        "can we go now|how much is it|what did you say"
    ),
    "|",
)


def _digits(rng: np.random.Generator, count: int, leading_zero: bool = False) -> str:
    digits = rng.integers(0, 10, count)
    if not leading_zero and count > 1:
        digits[0] = rng.integers(1, 10)
    return "".join(map(str, digits))


def _pick(rng: np.random.Generator, words: list[str]) -> str:
    return words[rng.integers(len(words))]


def _ordinal(number: int) -> str:
    suffix = (
        "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    )
    return f"{number}{suffix}"


def _pseudo_word(rng: np.random.Generator) -> str:
    """A pronounceable made-up word ("kuhaylah"), so URLs are mostly unique, as in the real data."""
    return "".join(_pick(rng, _SYLLABLES) for _ in range(rng.integers(2, 6)))


def _address(rng: np.random.Generator) -> str:
    number = _digits(rng, int(rng.choice([1, 2, 3, 4, 5], p=[0.04, 0.12, 0.3, 0.38, 0.16])))
    street_type = _pick(rng, _STREET_TYPES)
    form = rng.random()
    if form < 0.3:
        text = f"{number} {_pick(rng, _STREETS)} {street_type}"
    elif form < 0.65:
        text = f"{number} {_pick(rng, _DIRECTIONS)} {_pick(rng, _STREETS)} {street_type}"
    elif form < 0.85:
        ordinal = _ordinal(int(rng.integers(1, 1000)))
        text = f"{number} {_pick(rng, _DIRECTIONS)} {ordinal} {street_type}"
    else:
        text = f"{number} {_ordinal(int(rng.integers(1, 200)))} {street_type}"
    if rng.random() < 0.15:
        text += f" {_pick(rng, ['apt', 'unit', 'suite', '#'])} {rng.integers(1, 999)}"
    return text


def _phone(rng: np.random.Generator) -> str:
    form = rng.random()
    area, exchange, line = _digits(rng, 3), _digits(rng, 3), _digits(rng, 4, leading_zero=True)
    if form < 0.45:
        return f"{area}-{exchange}-{line}"
    if form < 0.8:
        return f"+1-{area}-{exchange}-{line}"
    if form < 0.9:
        country = _digits(rng, int(rng.integers(1, 3)))
        return f"+{country}-{_digits(rng, 2)}-{_digits(rng, 4)}-{line}"
    if form < 0.95:
        return f"{area}.{exchange}.{line}"
    return f"({area}) {exchange}-{line}"


def _url(rng: np.random.Generator) -> str:
    def word() -> str:
        return _pseudo_word(rng) if rng.random() < 0.5 else _pick(rng, _WORDS)

    tld = _pick(rng, _TLDS)
    form = rng.random()
    if form < 0.3:
        return f"www.{word()}{word()}.{tld}"
    if form < 0.6:
        return f"www.{word()}.{tld}/{_pick(rng, _PATH_WORDS)}"
    if form < 0.65:
        return f"www.{word()}{word()}.{tld}/{_pick(rng, _PATH_WORDS)}"
    if form < 0.77:
        return f"{word()}.{tld}/{_pick(rng, _PATH_WORDS)}"
    if form < 0.85:
        return f"{_pick(rng, ['http://', 'https://'])}{word()}.{tld}"
    user = f"{_pick(rng, _FIRST_NAMES)}{_pick(rng, ['', '.', '_'])}{_pick(rng, _LAST_NAMES)}"
    if rng.random() < 0.3:
        user = f"{_pick(rng, _FIRST_NAMES)}{_digits(rng, 2)}"
    return f"{user}@{word()}.{tld}"


def _name(rng: np.random.Generator) -> str:
    first, last = _pick(rng, _FIRST_NAMES), _pick(rng, _LAST_NAMES)
    form = rng.random()
    if form < 0.55:
        return f"{first} {last}"
    if form < 0.7:
        return f"{first} {_pick(rng, _FIRST_NAMES)} {last}"
    if form < 0.85:
        return f"{first} {chr(ord('a') + rng.integers(26))} {last}"
    if form < 0.93:
        return f"{first} {last}-{_pick(rng, _LAST_NAMES)}"
    return f"{_pick(rng, ['dr.', 'mr.', 'ms.', 'mrs.'])} {first} {last}"


def _rare(rng: np.random.Generator) -> str:
    word, name = _pick(rng, _WORDS), _pick(rng, _LAST_NAMES)
    number = str(rng.integers(1, 999))
    templates = [
        f"${number}.{_digits(rng, 2, leading_zero=True)}",
        f"{number}% off",
        f"{name} & {_pick(rng, _LAST_NAMES)}",
        f"{_pick(rng, _FIRST_NAMES)}'s {word}",
        f"{word}_{_pick(rng, _WORDS)}",
        f"{word}*{number}",
        f"{word}={number}",
        f"[{word} {number}",
        f"~/{word}",
        f"{word}!",
        f"{word}?",
        f"{word}, {name}; {number}: {_pick(rng, _WORDS)}",
        f"{number}:{_digits(rng, 2, leading_zero=True)} {_pick(rng, ['am', 'pm'])}",
        f"#{word}{number}",
        f"{word}+{_pick(rng, _WORDS)}",
    ]
    return templates[rng.integers(len(templates))]


def _short(rng: np.random.Generator) -> str:
    choices = [
        chr(ord("a") + rng.integers(26)),
        str(rng.integers(0, 10)),
        _pick(rng, _WORDS)[:4],
        _pick(rng, _FIRST_NAMES),
        str(rng.integers(10, 999)),
    ]
    return choices[rng.integers(len(choices))]


_PHRASE_KINDS = (  # (maker, weight): mix tuned to the real length statistics
    (_address, 0.45),
    (_phone, 0.10),
    (_url, 0.30),
    (_name, 0.10),
    (_rare, 0.03),
    (_short, 0.02),
)


def make_phrase(rng: np.random.Generator) -> str:
    """One competition-like phrase: 1..31 characters, all in the character map."""
    makers = [maker for maker, _ in _PHRASE_KINDS]
    weights = np.array([weight for _, weight in _PHRASE_KINDS])
    while True:
        phrase = makers[rng.choice(len(makers), p=weights / weights.sum())](rng)
        if 1 <= len(phrase) <= vocab.MAX_PHRASE_LENGTH:
            assert not vocab.unknown_characters(phrase), phrase
            return phrase


def make_sentence_pool(rng: np.random.Generator, size: int = 500) -> list[str]:
    """Distinct everyday sentences for the supplemental set (its phrases repeat, as in Kaggle's)."""
    pool: dict[str, None] = {}
    for _ in range(size * 50):
        if len(pool) >= size:
            break
        if rng.random() < 0.1:
            sentence = _pick(rng, _QUESTIONS) + _pick(rng, ["", "?"])
        else:
            tail = _pick(rng, _TAILS)
            sentence = f"{_pick(rng, _SUBJECTS)} {_pick(rng, _VERBS)} {_pick(rng, _OBJECTS)}"
            sentence = f"{sentence} {tail}" if tail else sentence
        if len(sentence) <= vocab.MAX_PHRASE_LENGTH:
            pool[sentence] = None
    return list(pool)
