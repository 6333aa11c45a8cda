"""Synthetic badge-scan leads with ground truth, for the dedupe-quality test and benchmarks.

Every generated row carries ``entity`` (the real person it describes, or ``None`` for a
row that must be quarantined) and ``variant`` (how it was dirtied), so pairwise precision
and recall can be computed against the resolver's output.
"""

from __future__ import annotations

import csv
import io
import random
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import phonenumbers
from stdnum.br import cnpj

FIRST = [
    "João",
    "José",
    "Maria",
    "Ana",
    "Antônio",
    "Francisco",
    "Carlos",
    "Paulo",
    "Pedro",
    "Lucas",
    "Luiz",
    "Marcos",
    "Luís",
    "Gabriel",
    "Rafael",
    "Daniel",
    "Marcelo",
    "Bruno",
    "Eduardo",
    "Felipe",
    "Raimundo",
    "Rodrigo",
    "Fernanda",
    "Patrícia",
    "Juliana",
    "Adriana",
    "Márcia",
    "Aline",
    "Camila",
    "Letícia",
    "Lucía",
    "Javier",
    "Sofía",
    "Alejandro",
    "Carmen",
    "Pablo",
    "Isabel",
    "Diego",
    "Elena",
    "Sergio",
    "Michael",
    "Sarah",
    "David",
    "Jennifer",
    "Robert",
    "Linda",
    "William",
    "Emily",
    "James",
    "Olivia",
    "Thiago",
    "Vinícius",
    "Gustavo",
    "Renata",
    "Beatriz",
    "Larissa",
    "Mateus",
    "Caio",
    "Helena",
    "Valentina",
    "Martín",
    "Lorena",
    "Iván",
    "Nuria",
    "Óscar",
    "Raquel",
]
LAST = [
    "Silva",
    "Santos",
    "Oliveira",
    "Souza",
    "Rodrigues",
    "Ferreira",
    "Alves",
    "Pereira",
    "Lima",
    "Gomes",
    "Costa",
    "Ribeiro",
    "Martins",
    "Carvalho",
    "Almeida",
    "Lopes",
    "Soares",
    "Fernandes",
    "Vieira",
    "Barbosa",
    "Rocha",
    "Dias",
    "Nascimento",
    "Andrade",
    "Moreira",
    "Nunes",
    "Marques",
    "Machado",
    "Mendes",
    "Freitas",
    "Cardoso",
    "Ramos",
    "Gonçalves",
    "Santana",
    "Teixeira",
    "García",
    "Martínez",
    "López",
    "Sánchez",
    "Pérez",
    "Gómez",
    "Martín",
    "Jiménez",
    "Ruiz",
    "Hernández",
    "Díaz",
    "Moreno",
    "Muñoz",
    "Álvarez",
    "Romero",
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Miller",
    "Davis",
    "Wilson",
    "Taylor",
    "Araújo",
    "Castro",
    "Pinto",
    "Correia",
    "Cavalcanti",
    "Monteiro",
    "Batista",
    "Campos",
]
CO_A = [
    "Metalúrgica",
    "Transportes",
    "Agro",
    "Construtora",
    "Logística",
    "Farmacêutica",
    "Tecnologia",
    "Alimentos",
    "Têxtil",
    "Química",
    "Comercial",
    "Indústria",
    "Distribuidora",
    "Energia",
    "Engenharia",
    "Papel",
    "Plásticos",
    "Móveis",
    "Cerâmica",
    "Vidros",
]
CO_B = [
    "Horizonte",
    "Atlântico",
    "Paulista",
    "Boa Vista",
    "Cruzeiro",
    "Estrela",
    "Aurora",
    "Central",
    "Nacional",
    "Global",
    "Vale Verde",
    "Sol Nascente",
    "Ibérica",
    "Pacífico",
    "Andina",
    "Triunfo",
    "Progresso",
    "União",
    "Litoral",
    "Serrana",
    "Norte",
    "Sul",
    "Continental",
    "Imperial",
    "Moderna",
    "Primavera",
    "Real",
    "Vitória",
    "Bandeirante",
]
SUFFIX = ["Ltda", "Ltda.", "S/A", "S.A.", "ME", "EIRELI", "SL", "Inc", "LLC", ""]
TITLES = [
    "Diretor Comercial",
    "Gerente de Compras",
    "Analista de Suprimentos",
    "CEO",
    "Director de Compras",
    "Jefe de Logística",
    "Procurement Manager",
    "VP Operations",
    "Coordenador de Logística",
    "Engenheira de Produção",
    "Sócio",
    "Buyer",
    "CFO",
]
FREE = ["gmail.com", "hotmail.com", "yahoo.com.br", "outlook.com"]
COUNTRIES = {"BR": ("Brasil", "55"), "ES": ("España", "34"), "US": ("USA", "1")}
HEADER = [
    "Nome",
    "Sobrenome",
    "E-mail",
    "Empresa",
    "Cargo",
    "Celular",
    "CNPJ",
    "País",
    "UF",
    "Observações",
    "Classificação",
    "Data da leitura",
]

VARIANTS = [
    "exact",
    "case_accents",
    "swapped",
    "free_mail",
    "company_typo",
    "no_email",
    "new_title",
    "phone_format",
    "name_typo_no_email",
    "middle_dropped",
    "job_change",
]


def _fold(s: str) -> str:
    return unicodedata.normalize("NFKD", s).encode("ascii", "ignore").decode().lower()


@dataclass
class Person:
    entity: int
    first: str
    last: str
    company: str
    domain: str
    cnpj: str
    email: str
    phone: str  # E.164
    title: str
    country: str


def _phone(rng: random.Random, country: str) -> str:
    while True:
        if country == "BR":
            ddd = rng.choice([11, 21, 31, 41, 51, 61, 71, 81])
            raw = f"+55{ddd}9{rng.randint(60000000, 99999999)}"
        elif country == "ES":
            raw = f"+346{rng.randint(10000000, 99999999)}"
        else:
            raw = f"+1{rng.choice([305, 212, 415, 312, 617])}{rng.randint(2000000, 9999999)}"
        if phonenumbers.is_valid_number(phonenumbers.parse(raw)):
            return raw


def _company(rng: random.Random, i: int) -> tuple[str, str, str]:
    name = f"{rng.choice(CO_A)} {rng.choice(CO_B)} {i}"
    domain = _fold(name).replace(" ", "") + rng.choice([".com.br", ".com", ".es"])
    base = f"{rng.randint(10**11, 10**12 - 1)}"
    return name, domain, base + cnpj.calc_check_digits(base)


def people(n: int, seed: int = 7) -> list[Person]:
    rng = random.Random(seed)
    companies = [_company(rng, i) for i in range(max(1, n // 4))]
    out = []
    for e in range(n):
        company, domain, tax = rng.choice(companies)
        first = rng.choice(FIRST)
        last = f"{rng.choice(LAST)} {rng.choice(LAST)}"
        country = rng.choices(["BR", "ES", "US"], weights=[6, 2, 2])[0]
        local = f"{_fold(first)}.{_fold(last).split()[-1]}{e}"
        out.append(
            Person(
                e,
                first,
                last,
                company,
                domain,
                tax,
                f"{local}@{domain}",
                _phone(rng, country),
                rng.choice(TITLES),
                country,
            )
        )
    return out


def _fmt_phone(p: Person, rng: random.Random) -> str:
    n = phonenumbers.parse(p.phone)
    return rng.choice(
        [
            phonenumbers.format_number(n, phonenumbers.PhoneNumberFormat.INTERNATIONAL),
            phonenumbers.format_number(n, phonenumbers.PhoneNumberFormat.E164),
            p.phone.lstrip("+"),
        ]
    )


def _row(p: Person, rng: random.Random, variant: str) -> list[str]:
    first, last, email, company = (
        p.first,
        p.last,
        p.email,
        f"{p.company} {rng.choice(SUFFIX)}".strip(),
    )
    title, phone = p.title, _fmt_phone(p, rng)
    if variant == "case_accents":
        first, last, email = _fold(first).upper(), _fold(last).upper(), email.upper()
    elif variant == "swapped":
        first, last = last, first
    elif variant == "free_mail":
        email = f"{_fold(p.first)}{_fold(p.last).split()[0]}{p.entity}@{rng.choice(FREE)}"
    elif variant == "company_typo":
        i = rng.randrange(2, len(p.company) - 2)
        chars = list(p.company)
        chars[i], chars[i + 1] = chars[i + 1], chars[i]
        company = "".join(chars)
    elif variant == "no_email":
        email = ""
    elif variant == "new_title":
        title = rng.choice([t for t in TITLES if t != p.title])
    elif variant == "phone_format":
        phone = p.phone
    elif variant == "name_typo_no_email":
        i = rng.randrange(1, len(first))
        first = first[:i] + rng.choice("aeiourls") + first[i + 1 :]
        email = ""
    elif variant == "middle_dropped":
        last = p.last.split()[-1]
        email = f"{_fold(p.first)}{p.entity}@{rng.choice(FREE)}"
    elif variant == "job_change":
        company = f"{rng.choice(CO_A)} {rng.choice(CO_B)} Nova {p.entity}"
        email = f"{_fold(p.first)}.{p.entity}@nova{p.entity}.com.br"
        title = rng.choice(TITLES)
    country, _ = COUNTRIES[p.country]
    stamp = f"{rng.randint(1, 28):02d}/03/2026 {rng.randint(8, 18):02d}:{rng.randint(0, 59):02d}"
    return [
        first,
        last,
        email,
        company,
        title,
        phone,
        p.cnpj if rng.random() < 0.3 else "",
        country,
        "SP" if p.country == "BR" else "",
        "",
        rng.choice(["Quente", "Morno", "Frio"]),
        stamp,
    ]


def _bad_row(rng: random.Random, i: int) -> tuple[list[str], str]:
    kind = rng.choice(["no_contact", "invalid_email", "formula_injection", "malformed_row"])
    row = [
        rng.choice(FIRST),
        rng.choice(LAST),
        f"bad{i}@example.com",
        "Empresa X",
        "Cargo",
        "",
        "",
        "Brasil",
        "SP",
        "",
        "Frio",
        "01/03/2026 10:00",
    ]
    if kind == "no_contact":
        row[2] = ""
    elif kind == "invalid_email":
        row[2] = f"bad{i}@@nowhere"
    elif kind == "formula_injection":
        row[9] = rng.choice(
            ['=HYPERLINK("http://x.example","x")', "=cmd|' /C calc'!A0", "@SUM(1+1)"]
        )
    else:
        row += ["extra", "cells"]
    return row, kind


def near_miss(p: Person, entity: int, rng: random.Random) -> Person:
    """Same surname and company, a different first name and email: a different person."""
    first = rng.choice([f for f in FIRST if _fold(f)[:3] != _fold(p.first)[:3]])
    return Person(
        entity,
        first,
        p.last,
        p.company,
        p.domain,
        p.cnpj,
        f"{_fold(first)}.{_fold(p.last).split()[-1]}{entity}@{p.domain}",
        _phone(rng, p.country),
        rng.choice(TITLES),
        p.country,
    )


def generate(
    n_rows: int,
    dup_rate: float = 0.15,
    bad_rate: float = 0.05,
    near_miss_rate: float = 0.02,
    seed: int = 7,
) -> list[tuple[list[str], int | None, str]]:
    """``n_rows`` rows of (cells, entity or None, variant) in a shuffled, realistic order."""
    rng = random.Random(seed)
    n_bad = int(n_rows * bad_rate)
    n_dup = int(n_rows * dup_rate)
    n_near = int(n_rows * near_miss_rate)
    n_homonyms = max(1, n_near // 2)
    n_people = n_rows - n_bad - n_dup - n_near - n_homonyms
    base = people(n_people, seed)
    rows: list[tuple[list[str], int | None, str]] = [
        (_row(p, rng, "exact"), p.entity, "original") for p in base
    ]
    for _ in range(n_dup):
        p = rng.choice(base)
        v = rng.choice(VARIANTS)
        rows.append((_row(p, rng, v), p.entity, v))
    for k in range(n_near):
        twin = near_miss(rng.choice(base), n_people + k, rng)
        rows.append((_row(twin, rng, "exact"), twin.entity, "near_miss"))
    # Homonyms: the same full name at another company, with their own email and phone.
    for k, other in enumerate(people(n_homonyms, seed + 1)):
        model = rng.choice(base)
        other.entity = n_people + n_near + k
        other.first, other.last = model.first, model.last
        rows.append((_row(other, rng, "exact"), other.entity, "homonym"))
    for i in range(n_bad):
        cells, kind = _bad_row(rng, i)
        rows.append((cells, None, kind))
    rng.shuffle(rows)
    return rows


def write_csv(
    rows: list[list[str]],
    path: Path,
    *,
    delimiter: str = ";",
    encoding: str = "cp1252",
    bom: bool = False,
    title_rows: int = 0,
) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=delimiter, lineterminator="\r\n")
    for _ in range(title_rows):
        w.writerow(["Exportação de leads - feira"])
    w.writerow(HEADER)
    w.writerows(rows)
    data = buf.getvalue().encode(encoding, errors="replace")
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)


def write_xlsx(rows: list[list[str]], path: Path) -> None:
    import openpyxl

    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet("Leads")
    ws.append(["Leads export"])
    ws.append(HEADER)
    for r in rows:
        ws.append([int(c) if i == 5 and c.isdigit() else c for i, c in enumerate(r)])
    wb.save(path)


def write_mixed(rows: list[list[str]], folder: Path, xlsx_share: float = 0.1) -> list[Path]:
    """Split rows over files in several dialects (cp1252 ';', UTF-8 BOM ',', XLSX)."""
    folder.mkdir(parents=True, exist_ok=True)
    n = len(rows)
    cut1, cut2 = int(n * 0.45), int(n * (0.9 - xlsx_share) + n * 0.0)
    cut2 = max(cut1, n - int(n * xlsx_share))
    a, b, c = rows[:cut1], rows[cut1:cut2], rows[cut2:]
    paths = [folder / "part1-cp1252-semicolon.csv", folder / "part2-utf8bom-comma.csv"]
    write_csv(a, paths[0], delimiter=";", encoding="cp1252", title_rows=2)
    write_csv(b, paths[1], delimiter=",", encoding="utf-8", bom=True)
    if c:
        paths.append(folder / "part3.xlsx")
        write_xlsx(c, paths[2])
    return paths
