"""A labelled set of page-version pairs for the competitor-change classifier (PT/ES/EN).

Each template is a hand-written policy page (a competitor's terms, price list, warranty or
service page) with its variants written out by hand: the values a clause can move to
(``{30|45}``: 30 before, 45 after), a paraphrase that says the same thing, a negated
version, clauses that could be added, and sentences that are not policy. Pairs are made
by mutating one thing at a time:

- material (label 1): a value moved, a clause added, a clause removed, a clause negated;
- not material (label 0): the dates, the menu, tracking parameters in links, whitespace, a
  clause reworded, two clauses swapped, a sentence that is no policy added.

The ``heldout`` templates are written in other words and layouts (lists, tables, other
vocabulary) than the ``train`` ones and are never used to tune the classifier.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

_SLOT = re.compile(r"\{([^{}|]*)\|([^{}|]*)\}")


@dataclass(frozen=True)
class Template:
    id: str
    lang: str
    split: str  # train | heldout
    title: str
    clauses: list[tuple[str, str | None, str | None]]  # (text, paraphrase, negated)
    extras: list[str]
    unrelated: list[str]
    dated: str
    menu: list[str]
    menu_alt: list[str]
    layout: str = "p"  # p | li | table


@dataclass(frozen=True)
class Pair:
    template: str
    lang: str
    split: str
    mutation: str
    material: bool
    before: bytes
    after: bytes = field(repr=False)


def before(text: str) -> str:
    return _SLOT.sub(lambda m: m[1], text)


def after(text: str) -> str:
    return _SLOT.sub(lambda m: m[2], text)


def _first_slot_moved(text: str) -> str:
    """Only the first slot takes its second value; the others keep the first."""
    done = [False]

    def pick(m: re.Match[str]) -> str:
        if done[0]:
            return m[1]
        done[0] = True
        return m[2]

    return _SLOT.sub(pick, text)


T = Template
TEMPLATES: list[Template] = [
    # ---------------------------------------------------------------- train, Portuguese
    T("pt-termos", "pt", "train", "Termos e condições de venda",
      [("Pagamento em até {30|45} dias após a emissão da nota fiscal.",
        "O prazo para pagamento é de {30|45} dias a contar da emissão da nota fiscal.",
        "Não aceitamos pagamento a prazo."),
       ("Entrega em {5|8} dias úteis para as capitais.",
        "Para as capitais, o prazo de entrega é de {5|8} dias úteis.", None),
       ("Devolução aceita em até {7|14} dias após o recebimento.",
        "Você pode devolver o produto em até {7|14} dias após recebê-lo.",
        "Não aceitamos devolução de produtos sob encomenda."),
       ("Todos os produtos têm garantia de {12|6} meses.",
        "A garantia de todos os produtos é de {12|6} meses.", None),
       ("Frete grátis para pedidos acima de R$ {500,00|800,00}.", None, None)],
      ["Desconto de 5% para pagamento à vista.",
       "Programa de fidelidade: cada R$ 10,00 em compras vale 1 ponto."],
      ["Inauguramos um novo escritório em Curitiba.", "Conheça nossa história e nossos valores."],
      "Atualizado em {date}.",
      ["Início", "Produtos", "Contato"], ["Início", "Loja", "Fale conosco"]),
    T("pt-garantia", "pt", "train", "Política de garantia",
      [("A garantia contra defeitos de fabricação é de {24|18} meses.",
        "Defeitos de fabricação estão cobertos por {24|18} meses.",
        "Defeitos causados por mau uso não têm garantia."),
       ("O reparo em garantia é feito em até {30|20} dias.",
        "Consertos cobertos pela garantia levam no máximo {30|20} dias.", None),
       ("A troca de produtos com defeito pode ser pedida em até {90|60} dias.", None, None),
       ("Atendimento técnico de segunda a sexta, das {8h às 18h|9h às 17h}.",
        "O suporte técnico funciona de segunda a sexta, das {8h às 18h|9h às 17h}.", None)],
      ["Garantia estendida de mais 12 meses por R$ 99,00.",
       "Atendimento técnico também aos sábados, das 9h às 13h."],
      ["Nossos técnicos são certificados pelos fabricantes."],
      "Política revisada em {date}.",
      ["Início", "Garantia", "Suporte"], ["Home", "Garantia", "Ajuda"]),
    T("pt-precos", "pt", "train", "Tabela de preços 2027", [
        ("Parafuso sextavado M8 caixa com 100 | R$ {45,90|49,90}", None, None),
        ("Porca M8 caixa com 100 | R$ {22,50|24,00}", None, None),
        ("Arruela lisa M8 caixa com 500 | R$ {31,00|29,00}", None, None),
        ("Desconto de {3%|5%} para pedidos acima de R$ 2.000,00.",
         "Pedidos acima de R$ 2.000,00 têm {3%|5%} de desconto.", None)],
      ["Barra roscada M8 1 metro | R$ 12,40", "Pagamento por boleto em 28 dias."],
      ["Imagens meramente ilustrativas."],
      "Tabela válida a partir de {date}.",
      ["Catálogo", "Preços"], ["Catálogo", "Tabela", "Ofertas"], "table"),
    # ---------------------------------------------------------------- train, Spanish
    T("es-condiciones", "es", "train", "Condiciones generales de venta",
      [("El pago se realiza a {30|60} días fecha factura.",
        "Las facturas se pagan a {30|60} días desde su fecha.",
        "No se admite el pago aplazado."),
       ("El plazo de entrega es de {48|72} horas en la península.",
        "Entregamos en la península en {48|72} horas.", None),
       ("Aceptamos devoluciones en un plazo de {14|30} días naturales.",
        "Las devoluciones se aceptan durante {14|30} días naturales.",
        "No aceptamos devoluciones de productos personalizados."),
       ("Garantía de {2|3} años en todos los productos.",
        "Todos los productos tienen {2|3} años de garantía.", None),
       ("Envío gratuito en pedidos superiores a {50|75} €.", None, None)],
      ["Descuento del 4% por pronto pago.",
       "Club de clientes: acumule puntos con cada compra."],
      ["Estamos presentes en más de veinte ferias al año."],
      "Última actualización: {date}.",
      ["Inicio", "Tienda", "Contacto"], ["Inicio", "Catálogo", "Contacto"]),
    T("es-atencion", "es", "train", "Atención al cliente",
      [("Atención al cliente de lunes a viernes de {9:00 a 18:00|10:00 a 19:00}.",
        "Nuestro horario de atención es de lunes a viernes, de "
        "{9:00 a 18:00|10:00 a 19:00}.", None),
       ("El soporte técnico responde en menos de {24|48} horas.",
        "Respondemos a las consultas técnicas en un máximo de {24|48} horas.", None),
       ("Los socios del club reciben un {5%|3%} de descuento en cada pedido.",
        "Cada pedido de un socio del club tiene un {5%|3%} de descuento.",
        "Los socios del club no tienen descuento en productos rebajados."),
       ("Cada {10|20} € de compra suman un punto de fidelidad.", None, None)],
      ["Atención también los sábados de 10:00 a 14:00.",
       "Cambios gratuitos durante 30 días para socios."],
      ["Visite nuestro blog con novedades del sector."],
      "Actualizado el {date}.", ["Inicio", "Ayuda"], ["Inicio", "Centro de ayuda", "Blog"]),
    T("es-tarifas", "es", "train", "Tarifas profesionales", [
        ("Taladro percutor 800W | {89,90|94,90} €", None, None),
        ("Amoladora 125 mm | {59,00|55,00} €", None, None),
        ("Juego de brocas 20 piezas | {19,50|21,50} €", None, None),
        ("Descuento por volumen del {8%|10%} a partir de 1.000 €.",
         "A partir de 1.000 € se aplica un descuento por volumen del {8%|10%}.", None)],
      ["Sierra de calar 650W | 74,90 €", "Pago a 30 días para clientes con cuenta."],
      ["Imágenes no contractuales."],
      "Tarifa vigente desde el {date}.",
      ["Productos", "Tarifas"], ["Productos", "Precios", "Ofertas"], "table"),
    # ---------------------------------------------------------------- train, English
    T("en-terms", "en", "train", "Terms of sale",
      [("Payment is due within {30|14} days of the invoice date.",
        "Invoices must be paid within {30|14} days of their date.",
        "We do not offer payment on account."),
       ("Orders ship within {2|4} business days.",
        "We dispatch orders within {2|4} business days.", None),
       ("Returns are accepted within {30|15} days of delivery.",
        "You may return items within {30|15} days of delivery.",
        "Returns are not accepted on clearance items."),
       ("All products carry a {12|24}-month warranty.",
        "Every product is covered by a {12|24}-month warranty.", None),
       ("Free delivery on orders over ${100|150}.", None, None)],
      ["A 2% discount applies to payment within 10 days.",
       "Loyalty members earn 1 point per $10 spent."],
      ["We opened a new warehouse in Leeds.", "Read about our sustainability commitments."],
      "Last updated {date}.",
      ["Home", "Shop", "Contact"], ["Home", "Products", "Support", "Contact"]),
    T("en-support", "en", "train", "Customer service",
      [("Our support team is available Monday to Friday, {8am to 6pm|9am to 5pm}.",
        "You can reach support Monday to Friday from {8am to 6pm|9am to 5pm}.", None),
       ("Emails to customer service are answered within {24|48} hours.",
        "Customer service replies to emails within {24|48} hours.", None),
       ("Rewards members get {10%|5%} off every order.",
        "Every order by a rewards member is {10%|5%} off.",
        "Rewards members get no discount on sale items."),
       ("Points expire after {12|6} months.", None, None)],
      ["Support is also open on Saturday, 10am to 2pm.",
       "Exchanges are free for rewards members."],
      ["Our team has grown to forty people."],
      "Page updated {date}.", ["Home", "Help"], ["Home", "Help centre", "Blog"]),
    T("en-delivery", "en", "train", "Delivery and returns",
      [("Standard delivery takes {3|5} business days.",
        "Standard orders arrive in {3|5} business days.", None),
       ("Express delivery costs ${9.90|12.90}.", None, None),
       ("Refunds are issued within {10|14} days of receiving the return.",
        "We refund you within {10|14} days of getting the item back.",
        "Refunds are not issued for opened software."),
       ("Returns are free within {30|14} days.",
        "You can send items back free of charge within {30|14} days.", None)],
      ["Orders placed before 2pm ship the same day.",
       "Oversized items carry a $25.00 delivery surcharge."],
      ["Packaging is made from recycled cardboard."],
      "Updated on {date}.", ["Home", "Delivery"], ["Home", "Shipping", "FAQ"]),
    # ---------------------------------------------------------------- held out
    T("pt-condicoes-gerais", "pt", "heldout", "Condições gerais de fornecimento",
      [("Prazo de pagamento: {28|35} dias, por boleto bancário.",
        "O boleto bancário vence em {28|35} dias.",
        "Não trabalhamos com pagamento por boleto."),
       ("Prazo de entrega de {10|15} dias corridos para todo o Brasil.",
        "Entregamos em todo o Brasil em até {10|15} dias corridos.", None),
       ("Arrependimento: o cliente pode desistir da compra em {7|10} dias.",
        "O direito de arrependimento vale por {7|10} dias.", None),
       ("Garantia legal de {90|30} dias mais garantia contratual de 9 meses.", None, None),
       ("Pedido mínimo de R$ {300,00|400,00}.", None, None)],
      ["Parcelamento em até 3 vezes sem juros no cartão.",
       "Clientes cadastrados no programa Parceiro Ouro acumulam pontos."],
      ["Somos uma empresa familiar fundada em 1987."],
      "Vigente desde {date}.",
      ["Empresa", "Linhas", "Contato"], ["Empresa", "Produtos", "Representantes"], "li"),
    T("pt-suporte", "pt", "heldout", "Central de relacionamento",
      [("SAC disponível de segunda a sábado, das {7h às 20h|8h às 18h}.",
        "O SAC atende de segunda a sábado, das {7h às 20h|8h às 18h}.", None),
       ("Clientes do Clube Vantagens têm {10%|7%} de desconto na linha profissional.",
        "Na linha profissional, quem é do Clube Vantagens paga {10%|7%} a menos.", None),
       ("A cada R$ {1,00|2,00} em compras você ganha 1 ponto no Clube Vantagens.", None, None),
       ("Chamados técnicos são respondidos em até {4|8} horas úteis.", None, None)],
      ["Frete grátis para membros do clube em qualquer pedido.",
       "Troca garantida em 30 dias para membros do clube."],
      ["Acompanhe nossas redes sociais para novidades."],
      "Informações atualizadas em {date}.", ["Clube", "SAC"], ["Clube", "SAC", "Lojas"], "li"),
    T("es-garantia-envios", "es", "heldout", "Envíos, garantía y devoluciones",
      [("Enviamos los pedidos en {24|48} horas laborables.",
        "Los pedidos salen de nuestro almacén en {24|48} horas laborables.", None),
       ("La garantía comercial es de {36|24} meses.",
        "Ofrecemos {36|24} meses de garantía comercial.",
        "Las piezas de desgaste no están cubiertas por la garantía."),
       ("El reembolso se realiza en {5|10} días hábiles.",
        "Devolvemos el importe en {5|10} días hábiles.", None),
       ("Gastos de envío: {4,95|5,95} € por pedido.", None, None)],
      ["Cambio de talla gratuito durante 15 días.",
       "Pago en tres cuotas sin intereses."],
      ["Nuestra fábrica está en Zaragoza desde 1972."],
      "Revisado el {date}.", ["Inicio", "Envíos"], ["Inicio", "Envíos y devoluciones"], "li"),
    T("en-price-list", "en", "heldout", "Trade price list", [
        ("Cordless drill 18V | £{129.00|139.00}", None, None),
        ("Impact driver 18V | £{99.00|95.00}", None, None),
        ("Battery 5Ah | £{49.50|52.00}", None, None),
        ("Trade accounts get {15%|12%} off list prices.",
         "List prices are reduced by {15%|12%} for trade accounts.", None),
        ("Net {30|45} payment terms for approved accounts.", None, None)],
      ["Charger fast 4A | £35.00", "Next-day delivery on orders placed before 4pm."],
      ["Product photos are for illustration only."],
      "Prices effective {date}.", ["Tools", "Prices"], ["Tools", "Trade", "Prices"], "table"),
    T("en-service-promise", "en", "heldout", "Our service promise",
      [("If something breaks within {3|2} years, we repair or replace it.",
        "Anything that breaks in the first {3|2} years is repaired or replaced.", None),
       ("Changed your mind? Send it back within {60|30} days for a full refund.",
        "Full refunds for anything sent back within {60|30} days.",
        "Opened items cannot be sent back for a refund."),
       ("Our help desk is staffed {24|12} hours a day.", None, None),
       ("Orders arrive within {5|7} working days.",
        "Expect your order within {5|7} working days.", None)],
      ["Members of our VIP club get free express shipping.",
       "Spend over $500.00 and get a 5% discount."],
      ["Our founders started in a garage in 2004."],
      "Reviewed {date}.", ["Home", "Promise"], ["Home", "Our promise", "Stores"]),
]  # fmt: skip

DATES = {
    "pt": ("3 de dezembro de 2026", "7 de dezembro de 2026"),
    "es": ("3 de diciembre de 2026", "7 de diciembre de 2026"),
    "en": ("3 December 2026", "7 December 2026"),
}


def render(
    t: Template,
    clauses: list[str],
    *,
    date: str,
    menu: list[str],
    tracking: str = "utm_source=site",
    spacing: str = "",
) -> bytes:
    """The page as a competitor's site would serve it: menu, main text, dated footer."""
    if t.layout == "table":
        rows = "".join(
            "<tr>" + "".join(f"<td>{html.escape(c.strip())}</td>" for c in cl.split("|")) + "</tr>"
            if "|" in cl
            else f'<tr><td colspan="2">{html.escape(cl)}</td></tr>'
            for cl in clauses
        )
        body = f"<table>{rows}</table>"
    elif t.layout == "li":
        body = "<ul>" + "".join(f"<li>{spacing}{html.escape(c)}{spacing}</li>" for c in clauses)
        body += "</ul>"
    else:
        body = "".join(f"<p>{spacing}{html.escape(c)}{spacing}</p>" for c in clauses)
    nav = "".join(f'<li><a href="/{i}?{tracking}">{html.escape(m)}</a></li>' for i, m in
                  enumerate(menu))  # fmt: skip
    dated = html.escape(t.dated.replace("{date}", date))
    return (
        f'<!DOCTYPE html><html lang="{t.lang}"><head><meta charset="utf-8">'
        f"<title>{html.escape(t.title)}</title><script>var t='{tracking}';</script></head><body>"
        f"<header><nav><ul>{nav}</ul></nav></header><main><h1>{html.escape(t.title)}</h1>"
        f"<p>{dated}</p>{body}"
        f'<p><a href="/contact?{tracking}">Contact</a></p></main>'
        f"<footer>© 2026 · {dated}</footer></body></html>"
    ).encode()


def pairs(templates: list[Template] | None = None) -> list[Pair]:
    """Every labelled pair of every template (see module docstring)."""
    out: list[Pair] = []
    for t in templates or TEMPLATES:
        d0, d1 = DATES[t.lang]
        base = [before(c) for c, _, _ in t.clauses]

        def page(clauses: list[str], t: Template = t, d0: str = d0, **kw: object) -> bytes:
            options: dict[str, object] = {"date": d0, "menu": t.menu, **kw}
            return render(t, clauses, **options)  # type: ignore[arg-type]

        old = page(base)

        def add(
            mutation: str, material: bool, new: bytes, t: Template = t, old: bytes = old
        ) -> None:
            out.append(Pair(t.id, t.lang, t.split, mutation, material, old, new))

        for i, (text, paraphrase, negated) in enumerate(t.clauses):
            if _SLOT.search(text):
                add("value moved", True, page([*base[:i], _first_slot_moved(text), *base[i + 1 :]]))
            if paraphrase:
                add("reworded", False, page([*base[:i], before(paraphrase), *base[i + 1 :]]))
            if negated:
                add("clause negated", True, page([*base[:i], before(negated), *base[i + 1 :]]))
        for extra in t.extras:
            add("clause added", True, page([*base, extra]))
            add("clause added", True, page([extra, *base]))
        for i in range(0, len(base), 2):
            add("clause removed", True, page(base[:i] + base[i + 1 :]))
        for sentence in t.unrelated:
            add("unrelated sentence", False, page([*base, sentence]))
        add("dates", False, page(base, date=d1))
        add("menu", False, page(base, menu=t.menu_alt))
        add("tracking parameters", False, page(base, tracking="utm_source=mail&utm_campaign=x7"))
        add("whitespace", False, page(base, spacing="\n   "))
        add("dates and menu", False, page(base, date=d1, menu=t.menu_alt))
        swapped = [base[1], base[0], *base[2:]]
        add("clauses swapped", False, page(swapped))
    return out
