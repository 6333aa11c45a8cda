"""Which client-policy points a passage states, and the values it states them with.

A page's text is cut into passages (sentences and table rows). Each passage gets the policy
points its words name (price, discount, payment terms, delivery time, warranty, returns,
support hours, loyalty; Portuguese, Spanish and English words, folded), the values it
states (percentages, days, months, amounts with their currency, hour and weekday ranges,
"free") and whether it is negated. A passage with values but no point word inherits the
points of the passage just before it (a heading "Warranty" and then "24 months.").

The *facts* of a page are what its policy passages assert (``fact``); two versions of a
page say the same thing when their facts are the same multiset, however reworded,
reordered or re-dated. Dates are masked before values are read, so "updated on
3 December 2026" is no value at all.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from config.competitors_policy import PolicyPoint
from tasks.common.text import fold

P = PolicyPoint

# Folded words (accents dropped, lower case) that name a point; prefixes end with "*".
LEXICON: dict[PolicyPoint, tuple[str, ...]] = {
    P.PRICE: (
        "price*", "pricing", "preco*", "precio*", "tarifa*", "cost", "costs", "costo*",
        "custo*", "list price",
    ),
    P.DISCOUNT: (
        "discount*", "desconto*", "descuento*", "rebate*", "promo*", "coupon*", "cupom*",
        "cupon*", "bonificac*", "off",
    ),
    P.PAYMENT_TERMS: (
        "pago", "pagos", "pagar", "pagamento*", "pague", "paga", "pagadero*", "pagavel",
        "payment*", "pay", "paid", "payable", "invoice*", "factura*", "fatura*", "boleto*",
        "installment*", "parcela*", "parcelado*", "cuota*", "net", "credito", "credit",
        "vencimento*", "vencimiento*", "pix", "transferencia*", "bank transfer",
    ),
    P.DELIVERY_TIME: (
        "deliver*", "shipping", "ship", "ships", "shipped", "shipment*", "dispatch*",
        "lead time", "entrega*", "entregamos", "entregue*", "envio*", "enviamos", "enviado*",
        "frete*", "despach*", "transportadora*", "courier", "carrier", "expedic*",
    ),
    P.WARRANTY: ("garant*", "warrant*", "guarant*"),
    P.RETURNS: (
        "return", "returns", "returned", "refund*", "exchange*", "devoluc*", "devolver",
        "devolvid*", "devuelt*", "devolvemos", "troca*", "reembols*", "arrependimento",
        "desistimiento", "cambio", "cambios",
    ),
    P.SUPPORT_HOURS: (
        "support", "suporte", "soporte", "helpdesk", "help desk", "customer service",
        "atendimento*", "atencion", "horario*", "sac", "hotline", "call center",
        "service desk", "opening hours", "business hours", "chat",
    ),
    P.LOYALTY: (
        "fidelidad*", "fidelizac*", "loyalty", "reward*", "cashback", "pontos", "points",
        "puntos", "member*", "socio*", "vip", "club", "clube", "milhas",
    ),
}  # fmt: skip

NEGATORS = {
    "en": frozenset({"not", "no", "never", "without", "cannot", "nor", "none", "excluded"}),
    "pt": frozenset({"nao", "nem", "sem", "nunca", "nenhum", "nenhuma", "exceto", "excluido"}),
    "es": frozenset({"no", "ni", "sin", "nunca", "ningun", "ninguna", "excepto", "excluido"}),
}
_STOPWORDS = {
    "en": frozenset({"the", "and", "of", "to", "within", "our", "we", "is", "are", "for"}),
    "pt": frozenset({"de", "os", "das", "dos", "para", "com", "em", "nao", "ao", "sao", "uma"}),
    "es": frozenset({"el", "los", "las", "del", "por", "con", "y", "para", "una", "su", "al"}),
}
FREE_WORDS = (
    "free", "gratis", "gratuito", "gratuita", "gratuitos", "gratuitas", "sem custo",
    "sin costo", "sin cargo", "free of charge", "no charge", "sem custos", "sin coste",
)  # fmt: skip

_MONTHS = (
    "january|february|march|april|may|june|july|august|september|october|november|december|"
    "jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec|"
    "janeiro|fevereiro|marco|março|abril|maio|junho|julho|agosto|setembro|outubro|novembro|"
    "dezembro|enero|febrero|marzo|mayo|junio|julio|septiembre|setiembre|octubre|noviembre|"
    "diciembre"
)
_DATES = re.compile(
    r"\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2})?(?:Z|[+-]\d{2}:?\d{2})?)?\b"
    r"|\b\d{1,2}[/.\-]\d{1,2}[/.\-]\d{2,4}\b"
    rf"|\b\d{{1,2}}(?:st|nd|rd|th|º|°)?\.?\s+(?:de\s+)?(?:{_MONTHS})\.?,?\s+(?:de\s+|del\s+)?\d{{4}}\b"
    rf"|\b(?:{_MONTHS})\.?\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}\b"
    rf"|\b(?:{_MONTHS})\.?\s+(?:de\s+|del\s+)?\d{{4}}\b",
    re.IGNORECASE,
)
_NUMBER = r"\d{1,3}(?:[.,\u00a0 ]\d{3})+(?:[.,]\d{1,2})?|\d+(?:[.,]\d+)?"
_CURRENCY_BEFORE = {
    "r$": "BRL", "us$": "USD", "u$s": "USD", "€": "EUR", "£": "GBP", "$": "$", "eur": "EUR",
    "usd": "USD", "brl": "BRL", "gbp": "GBP", "mxn": "MXN", "ars": "ARS", "clp": "CLP",
    "cop": "COP",
}  # fmt: skip
_CURRENCY_AFTER = {
    "€": "EUR", "eur": "EUR", "euro": "EUR", "euros": "EUR", "usd": "USD", "brl": "BRL",
    "reais": "BRL", "real": "BRL", "dolares": "USD", "dollars": "USD", "gbp": "GBP",
    "mxn": "MXN", "pesos": "$",
}  # fmt: skip
_AMOUNT_BEFORE = re.compile(
    r"(?<![A-Za-z])(R\$|US\$|U\$S|€|£|\$|EUR|USD|BRL|GBP|MXN|ARS|CLP|COP)\s?(" + _NUMBER + ")",
    re.IGNORECASE,
)
_AMOUNT_AFTER = re.compile(
    r"(?<![\d.,])(" + _NUMBER + r")\s?(€|EUR|euros?|USD|BRL|reais|real|d[oó]lares|dollars|"
    r"GBP|MXN|pesos)(?!\w)",
    re.IGNORECASE,
)
_PERCENT = re.compile(
    r"(?<![\d.,])(" + _NUMBER + r")\s?(?:%|por\s?cento|por\s?ciento|percent\b|per\s?cent\b)",
    re.IGNORECASE,
)
_NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "twelve": 12, "fifteen": 15, "twenty": 20, "thirty": 30,
    "sixty": 60, "ninety": 90, "um": 1, "uma": 1, "dois": 2, "duas": 2, "tres": 3,
    "quatro": 4, "cinco": 5, "seis": 6, "sete": 7, "oito": 8, "nove": 9, "dez": 10,
    "doze": 12, "quinze": 15, "vinte": 20, "trinta": 30, "sessenta": 60, "noventa": 90,
    "uno": 1, "un": 1, "una": 1, "dos": 2, "cuatro": 4, "siete": 7, "ocho": 8, "nueve": 9,
    "diez": 10, "doce": 12, "quince": 15, "veinte": 20, "treinta": 30, "sesenta": 60,
}  # fmt: skip
_UNITS = {
    "day": ("days", 1), "days": ("days", 1), "dia": ("days", 1), "dias": ("days", 1),
    "week": ("days", 7), "weeks": ("days", 7), "semana": ("days", 7), "semanas": ("days", 7),
    "month": ("months", 1), "months": ("months", 1), "mes": ("months", 1),
    "meses": ("months", 1), "year": ("months", 12), "years": ("months", 12),
    "ano": ("months", 12), "anos": ("months", 12), "hour": ("hours", 1),
    "hours": ("hours", 1), "hora": ("hours", 1), "horas": ("hours", 1),
}  # fmt: skip
_BUSINESS = ("business", "working", "uteis", "util", "habiles", "habil", "laborables")
# On folded text: "30 business days", "24-month", "trinta dias uteis", "net 30".
_DURATION = re.compile(
    r"\b(\d+|" + "|".join(_NUMBER_WORDS) + r")(?:\s|-)?(business |working )?"
    r"(days?|dias?|weeks?|semanas?|months?|mes|meses|years?|anos?|hours?|horas?)\b"
    r"( uteis| util| habiles| habil| laborables)?"
)
_NET = re.compile(r"\bnet (\d+)\b")
_CLOCK = r"(\d{1,2})(?:[:h](\d{2})|h|\s?(am|pm))"
_HOURS = re.compile(
    _CLOCK + r"\s*(?:-|–|—|to|until|till|a|as|às|ate|até|hasta|las)\s*" + _CLOCK, re.IGNORECASE
)
_WEEKDAYS = {
    "monday": 0, "mon": 0, "segunda": 0, "seg": 0, "lunes": 0, "lun": 0,
    "tuesday": 1, "tue": 1, "terca": 1, "ter": 1, "martes": 1, "mar": 1,
    "wednesday": 2, "wed": 2, "quarta": 2, "qua": 2, "miercoles": 2, "mie": 2,
    "thursday": 3, "thu": 3, "quinta": 3, "qui": 3, "jueves": 3, "jue": 3,
    "friday": 4, "fri": 4, "sexta": 4, "sex": 4, "viernes": 4, "vie": 4,
    "saturday": 5, "sat": 5, "sabado": 5, "sab": 5,
    "sunday": 6, "sun": 6, "domingo": 6, "dom": 6,
}  # fmt: skip
_DAY_NAMES = "|".join(sorted(_WEEKDAYS, key=len, reverse=True))
_WEEKDAY_RANGE = re.compile(
    rf"\b({_DAY_NAMES})(?:-feira)?\b\s*(?:-|–|to|through|a|ate|hasta|al)\s*"
    rf"(?:(?:la|o|el)\s+)?\b({_DAY_NAMES})\b"
)
_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+(?=[^\s\d])")
DAY_ABBREV = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

Value = tuple[str, ...]


@dataclass(frozen=True)
class Passage:
    text: str
    points: tuple[PolicyPoint, ...]
    values: tuple[Value, ...]
    negated: bool


# What a passage asserts, for comparing versions: its values and polarity when it states
# values (whichever points its words name: a rewording that names the point differently
# says the same), else the points it names and its polarity.
FactKey = tuple[object, ...]


def passages(text: str) -> list[str]:
    """Sentences and lines (a table row is a line) of canonical text, in order."""
    out: list[str] = []
    for line in text.split("\n"):
        out += [p.strip() for p in _SENTENCE_END.split(line) if p.strip()]
    return out


def mask_dates(text: str) -> str:
    """Dates (numeric, ISO and written in PT/ES/EN) replaced by a space: they are never
    policy values, and a page re-dated without other edits says nothing new."""
    return _DATES.sub(" ", text)


def parse_number(raw: str) -> float:
    """``1.200,50``, ``1,200.50``, ``49,90``, ``1 200`` and ``30`` as floats.

    The last separator is decimal when both kinds appear, or when a lone separator has one
    or two digits after it; otherwise separators group thousands.
    """
    raw = raw.replace("\u00a0", " ").replace(" ", "")
    last_dot, last_comma = raw.rfind("."), raw.rfind(",")
    if last_dot >= 0 and last_comma >= 0:
        decimal = "." if last_dot > last_comma else ","
        thousands = "," if decimal == "." else "."
        return float(raw.replace(thousands, "").replace(decimal, "."))
    sep = "." if last_dot >= 0 else "," if last_comma >= 0 else ""
    if not sep:
        return float(raw)
    head, _, tail = raw.rpartition(sep)
    if raw.count(sep) == 1 and len(tail) != 3:
        return float(f"{head}.{tail}")
    return float(raw.replace(sep, ""))


def _num(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _clock(hour: str, minute: str | None, meridiem: str | None) -> str | None:
    h, m = int(hour), int(minute or 0)
    if meridiem:
        if h > 12:
            return None
        h = h % 12 + (12 if meridiem.lower() == "pm" else 0)
    if h > 24 or m > 59:
        return None
    return f"{h:02d}:{m:02d}"


def extract_values(text: str) -> tuple[Value, ...]:
    """The values a passage states, normalised so that a rewording keeps them equal:
    ``("pct", "5")``, ``("amount", "EUR", "49.9")``, ``("days", "30")``,
    ``("business_days", "5")``, ``("months", "24")``, ``("hours", "08:00-18:00")``,
    ``("weekdays", "Mon-Fri")``, ``("free",)``. Sorted, without repeats."""
    text = mask_dates(text)
    found: set[Value] = set()
    spans: list[tuple[int, int]] = []
    for match in _AMOUNT_BEFORE.finditer(text):
        found.add(("amount", _CURRENCY_BEFORE[match[1].lower()], _num(parse_number(match[2]))))
        spans.append(match.span())
    for match in _AMOUNT_AFTER.finditer(text):
        if any(s <= match.start() < e for s, e in spans):
            continue
        currency = _CURRENCY_AFTER[fold(match[2]) or "€"]
        found.add(("amount", currency, _num(parse_number(match[1]))))
    for match in _PERCENT.finditer(text):
        found.add(("pct", _num(parse_number(match[1]))))
    for match in _HOURS.finditer(text):
        start, end = _clock(match[1], match[2], match[3]), _clock(match[4], match[5], match[6])
        if start and end and start < end:
            found.add(("hours", f"{start}-{end}"))
    folded = fold(text)
    for match in _DURATION.finditer(folded):
        amount = int(match[1]) if match[1].isdigit() else _NUMBER_WORDS[match[1]]
        unit, factor = _UNITS[match[3]]
        business = bool(match[2] or match[4]) and unit == "days"
        found.add(("business_days" if business else unit, str(amount * factor)))
    for match in _NET.finditer(folded):
        found.add(("days", match[1]))
    for match in _WEEKDAY_RANGE.finditer(folded):
        first, last = _WEEKDAYS[match[1]], _WEEKDAYS[match[2]]
        found.add(("weekdays", f"{DAY_ABBREV[first]}-{DAY_ABBREV[last]}"))
    padded = f" {folded} "
    if any(f" {w} " in padded for w in FREE_WORDS):
        found.add(("free",))
    return tuple(sorted(found))


def _compile_lexicon() -> list[tuple[PolicyPoint, re.Pattern[str]]]:
    out = []
    for point, words in LEXICON.items():
        alternatives = [
            re.escape(w[:-1]) + r"\w*" if w.endswith("*") else re.escape(w) for w in words
        ]
        out.append((point, re.compile(r"\b(?:" + "|".join(alternatives) + r")\b")))
    return out


_LEXICON_PATTERNS = _compile_lexicon()


def points_of(folded: str) -> tuple[PolicyPoint, ...]:
    """The points whose words occur in folded text, in the order of ``PolicyPoint``."""
    return tuple(point for point, pattern in _LEXICON_PATTERNS if pattern.search(folded))


def language(text: str) -> str:
    """pt, es or en, by which language's commonest words the text uses most."""
    words = fold(text).split()
    counts = {lang: sum(w in stop for w in words) for lang, stop in _STOPWORDS.items()}
    return max(counts, key=lambda lang: (counts[lang], lang == "en"))


def analyse(text: str) -> list[Passage]:
    """Every passage of a page with its points, values and polarity (see module docstring)."""
    lang = language(text)
    negators = NEGATORS[lang]
    out: list[Passage] = []
    previous: tuple[PolicyPoint, ...] = ()
    for raw in passages(text):
        folded = fold(mask_dates(raw))
        points = points_of(folded)
        values = extract_values(raw)
        if not points and values:
            if previous:
                points = previous
            elif any(v[0] == "amount" for v in values):
                points = (P.PRICE,)  # a bare amount on a price list is a price
        negated = any(w in negators for w in folded.split())
        out.append(Passage(raw, points, values, negated))
        if points:
            previous = points
    return out


def fact(passage: Passage) -> FactKey | None:
    """What a policy passage asserts (see ``FactKey``); None for a passage on no point."""
    if not passage.points:
        return None
    if passage.values:
        return ("values", passage.values, passage.negated)
    return ("points", passage.points, passage.negated)


def facts(analysed: list[Passage]) -> Counter[FactKey]:
    """The page's policy statements as a multiset (see module docstring)."""
    return Counter(f for f in map(fact, analysed) if f is not None)


def render_value(value: Value) -> str:
    """A value as a person reads it: ``5%``, ``30 days``, ``EUR 49.9``, ``Mon-Fri``."""
    kind = value[0]
    if kind == "pct":
        return f"{value[1]}%"
    if kind == "amount":
        return f"{value[1]} {value[2]}"
    if kind == "business_days":
        return f"{value[1]} business days"
    if kind in ("days", "months", "hours") and value[1][:1].isdigit() and ":" not in value[1]:
        return f"{value[1]} {kind}"
    if kind == "free":
        return "free"
    return value[1]
