"""Badge-scan exports drawn from a synthetic world that looks like the real one, with truth.

``benchmarks/leadgen.py`` makes one kind of dirt per duplicate on an easy population (a
numbered company each, 60 first names drawn evenly). Real exports are harder, and this
generator makes them so:

- thousands of companies per industry whose names share the industry's words and a legal
  form (``Luvia Equipamentos Industriais, Lda.``, ``Quintec Equipamentos Industriais,
  LDA``) and differ in one short brand word, brands that are one letter apart, family
  firms named after common surnames; company sizes with a heavy tail;
- given names and surnames of five countries (PT, BR, ES, UK, US) drawn with a Zipf skew,
  so a 200,000-row export holds hundreds of "João Silva", "María García" and "John Smith";
- people who are scanned again, at another fair, with their name shortened, in capitals,
  swapped or mistyped; who give a personal free-mail address, their company's
  switchboard or shared mailbox, or nothing; who change company (new work address, the
  same mobile); companies written with another legal form, abbreviated or mistyped;
  free-mail domains that the configured list does not know.

Everything is drawn from one ``random.Random(seed)``, so a configuration always yields the
same rows. ``HELDOUT`` differs from ``TUNED`` in its seed, its half of every vocabulary
(lists are split alternately, so both halves keep common names) and its distribution
parameters: the matcher is tuned on ``TUNED`` only, and ``HELDOUT`` says whether that holds.
"""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass, field, replace

from stdnum.br import cnpj, cpf
from stdnum.es import cif, dni
from stdnum.pt import nif

HEADER = [
    "First Name",
    "Last Name",
    "Email",
    "Company",
    "Job Title",
    "Phone",
    "Tax ID",
    "Country",
    "Scan Time",
]

# Ranked most common first (national statistics' order, roughly); drawn with a Zipf skew.
GIVEN = {
    "PT": "João José António Francisco Manuel Luís Pedro Carlos Miguel Rui Paulo Jorge Tiago "
    "Ricardo Nuno Bruno André Diogo Rafael Gonçalo Fernando Joaquim Vasco Duarte Hugo Sérgio "
    "Maria Ana Joana Sofia Inês Beatriz Mariana Catarina Rita Sara Marta Carla Patrícia "
    "Teresa Helena Isabel Filipa Cláudia Sónia Raquel Susana Andreia",
    "BR": "José João Antônio Francisco Carlos Paulo Pedro Lucas Luiz Marcos Luís Gabriel "
    "Rafael Daniel Marcelo Bruno Eduardo Felipe Rodrigo Thiago Gustavo Matheus Leonardo "
    "Vinícius Maria Ana Francisca Antônia Adriana Juliana Márcia Fernanda Patrícia Aline "
    "Sandra Camila Amanda Bruna Jéssica Letícia Júlia Luciana Vanessa Mariana Gabriela Larissa",
    "ES": "Antonio José Manuel Francisco David Juan Javier Daniel Carlos Jesús Alejandro "
    "Miguel Rafael Pablo Pedro Sergio Fernando Jorge Luis Alberto Álvaro Diego Adrián Raúl "
    "María Carmen Ana Laura Isabel Cristina Marta Lucía Elena Pilar Sara Paula Raquel Rosa "
    "Manuela Mercedes Sofía Nuria Silvia Irene Patricia Beatriz",
    "UK": "Oliver Jack Harry George James David John Michael Paul Andrew Mark Richard Thomas "
    "Daniel Christopher Peter Stephen Robert William Matthew Sarah Emma Claire Laura Rebecca "
    "Charlotte Emily Sophie Lucy Hannah Helen Rachel Amy Jessica Olivia Jane Susan Karen "
    "Victoria Katie",
    "US": "James Robert John Michael David William Richard Joseph Thomas Christopher Charles "
    "Daniel Matthew Anthony Mark Steven Paul Andrew Joshua Kevin Brian Mary Patricia Jennifer "
    "Linda Elizabeth Barbara Susan Jessica Karen Sarah Lisa Nancy Sandra Ashley Emily "
    "Michelle Amanda Melissa Stephanie Rebecca",
}
SURNAMES = {
    "PT": "Silva Santos Ferreira Pereira Oliveira Costa Rodrigues Martins Jesus Sousa "
    "Fernandes Gonçalves Gomes Lopes Marques Alves Almeida Ribeiro Pinto Carvalho Teixeira "
    "Moreira Correia Mendes Nunes Soares Vieira Monteiro Cardoso Rocha Neves Coelho Cruz "
    "Cunha Pires Ramos Reis Simões Antunes Matos Fonseca Machado Araújo Barbosa Tavares "
    "Lourenço Castro Figueiredo Azevedo Freitas Nogueira Vaz Brito Lima Henriques Magalhães "
    "Baptista Campos Faria Loureiro",
    "BR": "Silva Santos Oliveira Souza Rodrigues Ferreira Alves Pereira Lima Gomes Costa "
    "Ribeiro Martins Carvalho Almeida Lopes Soares Fernandes Vieira Barbosa Rocha Dias "
    "Nascimento Andrade Moreira Nunes Marques Machado Mendes Freitas Cardoso Ramos Gonçalves "
    "Santana Teixeira Araújo Pinto Cavalcanti Monteiro Batista Campos Correia Moura Castro "
    "Melo Barros Farias Cunha Reis Azevedo Medeiros Siqueira",
    "ES": "García Rodríguez González Fernández López Martínez Sánchez Pérez Gómez Martín "
    "Jiménez Hernández Ruiz Díaz Moreno Muñoz Álvarez Romero Gutiérrez Alonso Navarro Torres "
    "Domínguez Ramos Vázquez Ramírez Gil Serrano Morales Molina Blanco Suárez Castro Ortega "
    "Delgado Ortiz Marín Rubio Núñez Medina Sanz Castillo Iglesias Cortés Garrido Santos "
    "Guerrero Lozano Cano Prieto Méndez Cruz",
    "UK": "Smith Jones Williams Taylor Brown Davies Evans Wilson Thomas Johnson Roberts "
    "Robinson Thompson Wright Walker White Edwards Hughes Green Hall Lewis Harris Clarke "
    "Patel Jackson Wood Turner Martin Cooper Hill Ward Morris Moore Clark Lee King Baker "
    "Harrison Morgan Allen James Scott Phillips Watson Davis Parker Price Bennett Young "
    "Griffiths",
    "US": "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez "
    "Hernandez Lopez Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez "
    "Thompson White Harris Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King "
    "Wright Scott Torres Nguyen Hill Flores Green Adams Nelson Baker Hall Rivera Campbell "
    "Mitchell Carter Roberts",
}
LANGUAGE = {"PT": "pt", "BR": "pt", "ES": "es", "UK": "en", "US": "en"}
# Industry words shared by thousands of companies, per language.
INDUSTRIES = {
    "pt": [
        "Equipamentos Industriais", "Transportes e Logística", "Construções", "Metalomecânica",
        "Soluções Informáticas", "Tecnologia", "Indústria Alimentar", "Distribuição",
        "Comércio de Máquinas", "Engenharia", "Plásticos", "Têxteis", "Serviços",
        "Consultoria", "Materiais de Construção", "Embalagens", "Agroindustrial", "Energia",
        "Automação Industrial", "Climatização", "Logística", "Metalúrgica", "Componentes",
        "Sistemas de Segurança",
    ],
    "es": [
        "Equipos Industriales", "Transportes y Logística", "Construcciones", "Metalúrgica",
        "Soluciones Informáticas", "Tecnología", "Alimentación", "Distribuciones",
        "Maquinaria", "Ingeniería", "Plásticos", "Textil", "Servicios Integrales",
        "Consultoría", "Materiales de Construcción", "Embalajes", "Agroalimentaria",
        "Energía", "Automatización Industrial", "Climatización", "Logística", "Componentes",
        "Sistemas de Seguridad", "Suministros Industriales",
    ],
    "en": [
        "Industrial Equipment", "Logistics", "Construction", "Metalworks", "IT Solutions",
        "Technologies", "Foods", "Distribution", "Machinery", "Engineering", "Plastics",
        "Textiles", "Services", "Consulting", "Building Materials", "Packaging", "Agritech",
        "Energy", "Industrial Automation", "HVAC", "Supply Chain", "Components",
        "Security Systems", "Industrial Supplies",
    ],
}  # fmt: skip
FAMILY = {"pt": ["& Filhos", "Irmãos", "& Cia"], "es": ["e Hijos", "Hermanos"], "en": ["& Sons"]}
# Several spellings of each country's legal forms; the first is the usual one.
LEGAL = {
    "PT": [["Lda.", "Lda", "LDA", ", Lda.", "Limitada"], ["S.A.", "SA"], ["Unipessoal Lda."]],
    "BR": [["Ltda.", "Ltda", "LTDA"], ["S.A.", "S/A", "SA"], ["ME"], ["EIRELI"]],
    "ES": [["S.L.", "SL", ", S.L.", "S.L"], ["S.A.", "SA"], ["S.L.U.", "SLU"]],
    "UK": [["Ltd", "Ltd.", "Limited", "LTD"], ["PLC", "plc"]],
    "US": [["Inc.", "Inc", "Incorporated"], ["LLC", "L.L.C."], ["Corp.", "Corporation"]],
}
TLD = {"PT": ".pt", "BR": ".com.br", "ES": ".es", "UK": ".co.uk", "US": ".com"}
COUNTRY_NAME = {"PT": "Portugal", "BR": "Brasil", "ES": "España", "UK": "United Kingdom",
                "US": "USA"}  # fmt: skip
# Free mail by country; several are missing from config/sources.yaml's list on purpose.
FREE_MAIL = {
    "PT": ["gmail.com", "sapo.pt", "hotmail.com", "netcabo.pt", "outlook.pt"],
    "BR": ["gmail.com", "hotmail.com", "yahoo.com.br", "uol.com.br", "bol.com.br"],
    "ES": ["gmail.com", "hotmail.es", "yahoo.es", "telefonica.net", "outlook.es"],
    "UK": ["gmail.com", "btinternet.com", "yahoo.co.uk", "hotmail.co.uk", "outlook.com"],
    "US": ["gmail.com", "yahoo.com", "comcast.net", "aol.com", "outlook.com"],
}
SYLLABLES = [
    "lu",
    "via",
    "qui",
    "tec",
    "ri",
    "mar",
    "al",
    "ba",
    "cor",
    "del",
    "fer",
    "gal",
    "in",
    "lis",
    "mon",
    "nor",
    "pro",
    "sol",
    "tra",
    "ver",
    "zen",
    "ar",
    "bel",
    "cas",
    "dor",
    "e",
    "for",
    "gra",
    "ho",
    "ka",
    "lin",
    "max",
    "ne",
    "o",
    "pan",
    "quan",
    "ro",
    "sa",
    "ter",
    "u",
    "val",
    "vi",
    "xa",
    "ze",
    "bra",
    "cla",
    "fra",
    "bio",
    "cen",
    "dal",
    "el",
    "fa",
    "gen",
    "im",
    "jo",
    "kor",
    "lan",
    "mi",
    "nat",
    "ox",
    "pa",
    "rec",
    "si",
    "tor",
    "un",
    "ven",
    "wel",
    "zo",
    "bel",
    "cri",
    "dia",
    "eco",
    "flu",
    "geo",
    "hi",
    "lux",
    "mo",
    "neo",
    "om",
    "pla",
    "qua",
    "sta",
    "tri",
    "vo",
    "ga",
    "le",
]
TITLES = [
    "Director Comercial",
    "Diretor Comercial",
    "Gerente de Compras",
    "Jefe de Compras",
    "Procurement Manager",
    "Buyer",
    "CEO",
    "Sales Manager",
    "Engenheiro de Produção",
    "Responsable de Logística",
    "Operations Manager",
    "Técnico Comercial",
    "Administrador",
    "Account Manager",
    "CFO",
]
SHARED_BOXES = ["info", "geral", "comercial", "sales", "contact", "ventas"]


@dataclass(frozen=True)
class WorldConfig:
    """What a world looks like: vocabulary half, skews and the rates of each kind of dirt."""

    seed: int
    vocab_half: int  # which alternate half of every word list (0 or 1)
    countries: dict[str, float] = field(
        default_factory=lambda: {"PT": 0.25, "BR": 0.25, "ES": 0.2, "UK": 0.15, "US": 0.15}
    )
    name_skew: float = 0.9  # Zipf exponent of given names and surnames
    # Share of people whose given name / surname is one of the common ones listed (the
    # rest have one of a long tail); the top name's share is about this over 5 (given)
    # or 6 (surname): a 6% José, a 9% Silva, a 4% García, a 1.5% Smith.
    given_head: float = 0.3
    surname_head: dict[str, float] = field(
        default_factory=lambda: {"PT": 0.55, "BR": 0.55, "ES": 0.25, "UK": 0.09, "US": 0.09}
    )
    company_size_alpha: float = 1.6  # Pareto shape of attendees per company
    rows_per_person: float = 1.45  # mean sightings of a person
    job_change: float = 0.04  # share of re-scanned people seen at a second company
    free_mail: float = 0.12  # a sighting with a personal free-mail address
    no_email: float = 0.12
    shared_mailbox: float = 0.04  # info@ / comercial@ of the company
    switchboard: float = 0.2  # the company's main number instead of a mobile
    no_phone: float = 0.3
    name_typo: float = 0.03
    name_short: float = 0.3  # a middle name or second surname left out
    swapped: float = 0.03
    capitals: float = 0.08
    company_variant: float = 0.25  # another legal form, abbreviated, capitals
    company_typo: float = 0.02
    no_company: float = 0.04
    tax_id: float = 0.15  # a sighting giving the company's tax id
    person_tax_id: float = 0.04
    free_mail_company: float = 0.08  # small firms whose staff all use free mail
    brand_letter_twins: float = 0.05  # brands made one letter away from an existing one


TUNED = WorldConfig(seed=20261207, vocab_half=0)
HELDOUT = replace(
    TUNED,
    seed=777001,
    vocab_half=1,
    countries={"PT": 0.15, "BR": 0.3, "ES": 0.25, "UK": 0.1, "US": 0.2},
    name_skew=1.0,
    given_head=0.35,
    surname_head={"PT": 0.6, "BR": 0.5, "ES": 0.3, "UK": 0.12, "US": 0.08},
    company_size_alpha=1.4,
    rows_per_person=1.6,
    job_change=0.06,
    free_mail=0.15,
    no_email=0.1,
    switchboard=0.25,
    name_typo=0.04,
    name_short=0.35,
    company_variant=0.3,
    company_typo=0.03,
    brand_letter_twins=0.08,
)


def fold(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()


def _half(words: list[str], half: int) -> list[str]:
    return words[half::2]


@dataclass
class Company:
    key: int
    country: str
    name: str  # without legal form
    short: str  # the brand alone, as people abbreviate
    legal: list[str]  # spellings of its legal form
    domain: str | None
    pattern: str  # how its work addresses are formed
    switchboard: str
    tax_id: str | None


@dataclass
class Person:
    entity: int
    country: str
    given: list[str]
    surnames: list[str]
    company: Company
    mobile: str
    personal_email: str
    tax_id: str | None
    emails: dict[int, str] = field(default_factory=dict)  # work address per company


class World:
    """Companies and people of one configuration, and the sightings drawn from them."""

    def __init__(self, config: WorldConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        half = config.vocab_half
        self.given = {c: _half(GIVEN[c].split(), half) for c in GIVEN}
        self.surnames = {c: _half(SURNAMES[c].split(), half) for c in SURNAMES}
        self.industries = {lang: _half(words, half) for lang, words in INDUSTRIES.items()}
        self.syllables = _half(SYLLABLES, half) + _half(SYLLABLES, 1 - half)[:6]
        self.weights = {c: _zipf(len(v), config.name_skew) for c, v in self.given.items()}
        self.surname_weights = {
            c: _zipf(len(v), config.name_skew) for c, v in self.surnames.items()
        }
        self.company_names: set[str] = set()
        self.domains: set[str] = set()
        self.brands: list[str] = []
        self.brand_set: set[str] = set()
        self.addresses: set[str] = set()
        self.phones: set[str] = set()

    # -- companies -----------------------------------------------------------------

    def _brand(self) -> str:
        rng = self.rng
        while True:
            if self.brands and rng.random() < self.config.brand_letter_twins:
                base = rng.choice(self.brands)
                i = rng.randrange(len(base))
                brand = (base[:i] + rng.choice("aeioulrnstcm") + base[i + 1 :]).capitalize()
            else:
                n = rng.choices([2, 3, 4], weights=[2, 3, 1])[0]
                brand = "".join(rng.choice(self.syllables) for _ in range(n)).capitalize()
            if brand not in self.brand_set:
                return brand

    def company(self, key: int) -> Company:
        rng = self.rng
        countries = list(self.config.countries)
        country = rng.choices(countries, weights=list(self.config.countries.values()))[0]
        lang = LANGUAGE[country]
        while True:
            kind = rng.random()
            industry = rng.choice(self.industries[lang])
            if kind < 0.12:
                family = rng.choices(self.surnames[country], self.surname_weights[country])[0]
                brand = family
                name = f"{family} {rng.choice(FAMILY[lang])}"
                if rng.random() < 0.5:
                    name = f"{name} {industry}" if lang != "en" else f"{family} {industry}"
            else:
                brand = self._brand()
                name = f"{brand} {industry}"
                if rng.random() < 0.1:
                    name = brand
            folded = fold(name)
            if folded not in self.company_names and len(brand) >= 3:
                break
        self.company_names.add(folded)
        self.brands.append(brand)
        self.brand_set.add(brand)
        legal = rng.choice(LEGAL[country])
        domain: str | None = None
        if rng.random() >= self.config.free_mail_company:
            stem = fold(brand).replace(" ", "")
            candidates = [stem, stem + fold(industry).split()[0][:4], fold(name).replace(" ", "")]
            for c in [*candidates, f"{stem}{key}"]:
                d = c.replace("&", "") + TLD[country]
                if d not in self.domains:
                    domain = d
                    break
            assert domain is not None
            self.domains.add(domain)
        pattern = rng.choice(["first.last", "flast", "first", "first.last", "firstl", "first_last"])
        return Company(
            key,
            country,
            name,
            brand,
            legal,
            domain,
            pattern,
            self._phone(country, mobile=False),
            self._company_tax_id(country),
        )

    def _company_tax_id(self, country: str) -> str | None:
        rng = self.rng
        if country == "PT":
            base = f"5{rng.randint(0, 9999999):07d}"
            return base + nif.calc_check_digit(base)
        if country == "BR":
            base = f"{rng.randint(10**7, 10**8 - 1)}0001"
            return base + cnpj.calc_check_digits(base)
        if country == "ES":
            base = f"B{rng.randint(0, 9999999):07d}"
            return base + cif.calc_check_digits(base)[0]
        return None

    def _person_tax_id(self, country: str) -> str | None:
        rng = self.rng
        if country == "PT":
            base = f"{rng.choice('12')}{rng.randint(0, 9999999):07d}"
            return base + nif.calc_check_digit(base)
        if country == "BR":
            base = f"{rng.randint(10**8, 10**9 - 1)}"
            return base + cpf._calc_check_digits(base)
        if country == "ES":
            base = f"{rng.randint(10**7, 10**8 - 1)}"
            return base + dni.calc_check_digit(base)
        return None

    def _phone(self, country: str, *, mobile: bool) -> str:
        rng = self.rng
        while True:
            if country == "PT":
                raw = (
                    f"+3519{rng.choice('1236')}{rng.randint(0, 9999999):07d}"
                    if mobile
                    else (f"+3512{rng.choice('12')}{rng.randint(0, 9999999):07d}")
                )
            elif country == "BR":
                ddd = rng.choice([11, 21, 31, 41, 51, 61, 71, 81])
                raw = (
                    f"+55{ddd}9{rng.randint(60000000, 99999999)}"
                    if mobile
                    else (f"+55{ddd}3{rng.randint(0, 9999999):07d}")
                )
            elif country == "ES":
                raw = (
                    f"+346{rng.randint(0, 99999999):08d}"
                    if mobile
                    else (f"+3491{rng.randint(0, 9999999):07d}")
                )
            elif country == "UK":
                raw = (
                    f"+447{rng.choice('5789')}{rng.randint(0, 99999999):08d}"
                    if mobile
                    else (f"+44207{rng.randint(0, 9999999):07d}")
                )
            else:
                area = rng.choice([212, 305, 312, 415, 617, 713, 404, 206])
                raw = f"+1{area}{rng.randint(2, 9)}{rng.randint(0, 999999):06d}"
            if raw not in self.phones:
                self.phones.add(raw)
                return raw

    # -- people --------------------------------------------------------------------

    def _given(self, country: str) -> str:
        rng = self.rng
        if rng.random() < self.config.given_head:
            return rng.choices(self.given[country], self.weights[country])[0]
        return _rare_name(rng, country, given=True)

    def _surname(self, country: str) -> str:
        rng = self.rng
        if rng.random() < self.config.surname_head[country]:
            return rng.choices(self.surnames[country], self.surname_weights[country])[0]
        return _rare_name(rng, country, given=False)

    def person(self, entity: int, company: Company) -> Person:
        rng = self.rng
        country = company.country if rng.random() < 0.92 else rng.choice(list(GIVEN))
        given = [self._given(country)]
        surnames = [self._surname(country)]
        if country in ("PT", "BR", "ES"):
            if rng.random() < 0.3:
                second = self._given(country)
                if second != given[0]:
                    given.append(second)
            if rng.random() < (0.85 if country == "ES" else 0.6):
                other = self._surname(country)
                if other != surnames[0]:
                    # Iberian order: the father's surname last in PT/BR, first in ES.
                    surnames = [other, *surnames] if country != "ES" else [*surnames, other]
        elif rng.random() < 0.1:
            given.append(rng.choice("ABCDEJLMRST") + ".")
        first, last = fold(given[0]), fold(surnames[-1 if country != "ES" else 0])
        local = f"{first}{last}{rng.randint(1, 99) if rng.random() < 0.8 else ''}"
        if rng.random() < 0.3:
            local = f"{first}.{last}{rng.randint(1960, 2004)}"
        free = rng.choice(FREE_MAIL[country])
        personal = self._unique(local, free)
        return Person(
            entity,
            country,
            given,
            surnames,
            company,
            self._phone(country, mobile=True),
            personal,
            self._person_tax_id(country),
        )

    def _unique(self, local: str, domain: str) -> str:
        local = local.replace(" ", "")
        address, n = f"{local}@{domain}", 1
        while address in self.addresses:
            n += 1
            address = f"{local}{n}@{domain}"
        self.addresses.add(address)
        return address

    def work_email(self, p: Person, c: Company) -> str | None:
        if c.domain is None:
            return None
        if c.key not in p.emails:
            first = fold(p.given[0]).replace(" ", "")
            last = fold(p.surnames[-1 if p.country != "ES" else 0]).replace(" ", "")
            local = {
                "first.last": f"{first}.{last}",
                "flast": f"{first[0]}{last}",
                "first": first,
                "firstl": f"{first}{last[0]}",
                "first_last": f"{first}_{last}",
            }[c.pattern]
            p.emails[c.key] = self._unique(local, c.domain)
        return p.emails[c.key]

    # -- sightings -----------------------------------------------------------------

    def sighting(self, p: Person, c: Company) -> list[str]:
        rng, cfg = self.rng, self.config
        given, surnames = list(p.given), list(p.surnames)
        if rng.random() < cfg.name_short:
            given = given[:1]
            surnames = surnames[-1:] if p.country != "ES" else surnames[:1]
        first, last = " ".join(given), " ".join(surnames)
        if rng.random() < cfg.name_typo:
            first, last = (
                (_typo(rng, first), last) if rng.random() < 0.5 else (first, _typo(rng, last))
            )
        if rng.random() < cfg.capitals:
            first, last = fold(first).upper(), fold(last).upper()
        if rng.random() < cfg.swapped:
            first, last = last, first
        roll = rng.random()
        work = self.work_email(p, c)
        if roll < cfg.no_email:
            email = ""
        elif roll < cfg.no_email + cfg.free_mail or work is None:
            email = p.personal_email
        elif roll < cfg.no_email + cfg.free_mail + cfg.shared_mailbox and c.domain:
            email = f"{rng.choice(SHARED_BOXES)}@{c.domain}"
        else:
            email = work
        if email and rng.random() < 0.05:
            email = email.upper()
        roll = rng.random()
        if roll < cfg.no_phone and email:
            phone = ""
        elif roll < cfg.no_phone + cfg.switchboard:
            phone = _format_phone(rng, c.switchboard)
        else:
            phone = _format_phone(rng, p.mobile)
        company = f"{c.name} {rng.choice(c.legal[:1] * 3 + c.legal)}".replace(" ,", ",")
        roll = rng.random()
        if roll < cfg.no_company:
            company = ""
        elif roll < cfg.no_company + cfg.company_typo:
            company = _typo(rng, company, swap=True)
        elif roll < cfg.no_company + cfg.company_typo + cfg.company_variant:
            company = rng.choice(
                [
                    c.name,
                    f"{c.short} {rng.choice(c.legal)}".replace(" ,", ","),
                    company.upper(),
                    fold(company),
                ]
            )
        tax = ""
        roll = rng.random()
        if roll < cfg.tax_id and c.tax_id:
            tax = c.tax_id
        elif roll < cfg.tax_id + cfg.person_tax_id and p.tax_id:
            tax = p.tax_id
        stamp = (
            f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d} "
            f"{rng.randint(8, 18):02d}:{rng.randint(0, 59):02d}"
        )
        return [
            first,
            last,
            email,
            company,
            rng.choice(TITLES),
            phone,
            tax,
            COUNTRY_NAME[p.country],
            stamp,
        ]


# The long tail of names: rarer names, made of a language's syllables and endings.
_TAIL = {
    "pt": ("bel cel dar gil ire jan lau leo mir nel odi ros sal tel val zul aur cid fab "
           "eus gus hel lin mau", "o a ino ina eu ene ário iana", "eira ais ões elo ado ento"),
    "es": ("bal cen dar fel gar ise lor mar nor osa pel ram sal tol ven zar aur bel cal "
           "dem eli fer gon", "o a io ia el ela ino ina", "ez ero ado illo ena ón"),
    "en": ("ash brad cole dun ell fair grey hart kel lang mor nash pem red sel thorn "
           "wal win york bar ches cliff dal", "en a ie y on ett er", "ley ton field ford wood by"),
}  # fmt: skip


def _rare_name(rng: random.Random, country: str, *, given: bool) -> str:
    stems, given_ends, surname_ends = (part.split() for part in _TAIL[LANGUAGE[country]])
    stem = rng.choice(stems) + (rng.choice(stems) if rng.random() < 0.5 else "")
    return (stem + rng.choice(given_ends if given else surname_ends)).capitalize()


def _zipf(n: int, skew: float) -> list[float]:
    return [1 / (rank + 1) ** skew for rank in range(n)]


def _typo(rng: random.Random, text: str, *, swap: bool = False) -> str:
    """One keying error: a swapped pair, a dropped or a replaced letter."""
    if len(text) < 4:
        return text
    i = rng.randrange(1, len(text) - 2)
    kind = "swap" if swap else rng.choice(["swap", "drop", "replace"])
    if kind == "swap":
        return text[:i] + text[i + 1] + text[i] + text[i + 2 :]
    if kind == "drop":
        return text[:i] + text[i + 1 :]
    return text[:i] + rng.choice("aeiourlnst") + text[i + 1 :]


def _format_phone(rng: random.Random, e164: str) -> str:
    """International with spaces, plain E.164, or digits without the plus."""
    roll = rng.random()
    if roll < 0.4:
        return e164
    if roll < 0.7:
        return f"{e164[:3]} {e164[3:6]} {e164[6:9]} {e164[9:]}"
    return e164.lstrip("+")


def generate(n_rows: int, config: WorldConfig = TUNED) -> list[tuple[list[str], int, int]]:
    """``n_rows`` sightings (cells, the person's entity id, the company's), shuffled."""
    world = World(config)
    rng = world.rng
    n_people = max(1, round(n_rows / config.rows_per_person))
    companies: list[Company] = []
    people: list[Person] = []
    while len(people) < n_people:
        c = world.company(len(companies))
        companies.append(c)
        size = min(int(rng.paretovariate(config.company_size_alpha)), 2000)
        for _ in range(min(size, n_people - len(people))):
            people.append(world.person(len(people), c))
    rows = [(world.sighting(p, p.company), p.entity, p.company.key) for p in people]
    # Further sightings: a geometric number per person, some after a change of company.
    repeat = 1 - 1 / config.rows_per_person
    moved: dict[int, Company] = {}
    while len(rows) < n_rows:
        p = rng.choice(people)
        while len(rows) < n_rows:
            company = p.company
            if p.entity in moved or rng.random() < config.job_change:
                if p.entity not in moved:
                    moved[p.entity] = rng.choice(companies)
                company = moved[p.entity]
            rows.append((world.sighting(p, company), p.entity, company.key))
            if rng.random() >= repeat:
                break
    rng.shuffle(rows)
    return rows[:n_rows]
