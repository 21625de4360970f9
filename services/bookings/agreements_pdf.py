"""An agreement between communes as a French A4 PDF for the councils' files: the usual
structure of a convention de mise à disposition (docs/agreements.md says where it comes from).
"""

from __future__ import annotations

from pathlib import Path

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from contracts.agreements import AgreementView, Tariff
from contracts.french import of_commune
from contracts.listings import CATEGORIES

FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu"))
# what Helvetica (Latin-1) cannot show, when DejaVu is not installed
LATIN1 = str.maketrans({"—": "-", "–": "-", "’": "'", "œ": "oe", "Œ": "OE", "…": "...", "€": "EUR"})

TARIFF_CLAUSES = {
    Tariff.LISTING_RATES: (
        "Chaque mise à disposition est facturée par la commune qui prête à la commune "
        "bénéficiaire aux tarifs publiés sur Mutualis pour le bien ou le service concerné au "
        "jour de la demande, tels qu'approuvés par délibération de son conseil municipal."
    ),
    Tariff.COST_REIMBURSEMENT: (
        "La commune bénéficiaire rembourse à la commune qui prête les frais réellement "
        "exposés pour la mise à disposition (coût horaire ou journalier du matériel et, le cas "
        "échéant, des agents, consommables et déplacements), sur présentation d'un état "
        "justificatif joint à la facture."
    ),
}

LEGAL_BASIS = (
    "Vu le code général des collectivités territoriales, notamment ses articles L. 5111-1 "
    "(conventions entre collectivités territoriales ayant pour objet la réalisation de "
    "prestations de services) et L. 5211-4-1 (mise à disposition de services au sein d'un "
    "établissement public de coopération intercommunale) ;"
)


class _Document(FPDF):
    def __init__(self, title: str):
        super().__init__(format="A4")
        self.title_text = title
        self.set_auto_page_break(auto=True, margin=20)
        self.set_margins(20, 18, 20)
        self.set_title(title)
        self.set_creator("Mutualis")
        self.unicode = self._add_dejavu()

    def _add_dejavu(self) -> bool:
        for folder in FONT_DIRS:
            regular, bold = folder / "DejaVuSans.ttf", folder / "DejaVuSans-Bold.ttf"
            if regular.exists() and bold.exists():
                self.add_font("body", "", str(regular))
                self.add_font("body", "B", str(bold))
                return True
        return False

    def text_of(self, value: str) -> str:
        if self.unicode:
            return value
        return value.translate(LATIN1).encode("latin-1", "replace").decode("latin-1")

    def write_line(self, text: str, size: float = 10, bold: bool = False, gap: float = 1.5):
        self.set_font("body" if self.unicode else "Helvetica", "B" if bold else "", size)
        self.multi_cell(
            0, size * 0.5, self.text_of(text), align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT
        )
        self.ln(gap)

    def footer(self) -> None:
        self.set_y(-14)
        self.set_font("body" if self.unicode else "Helvetica", "", 7.5)
        self.set_text_color(90, 90, 90)
        self.cell(
            0, 5, self.text_of(f"{self.title_text} — page {self.page_no()}/{{nb}}"), align="C"
        )
        self.set_text_color(0, 0, 0)


def _day(value) -> str:
    return value.strftime("%d/%m/%Y")


def scope_sentence(agreement: AgreementView) -> str:
    things = [CATEGORIES.get(c, c).lower() for c in agreement.categories]
    if agreement.covers_staff:
        things.append("mise à disposition d'agents (expertise, missions à la journée)")
    return "; ".join(things)


def term_sentence(agreement: AgreementView) -> str:
    if agreement.ends_on is None:
        return (
            f"La présente convention prend effet le {_day(agreement.starts_on)}, sous réserve "
            "de sa signature par toutes les parties, pour une durée indéterminée. Chaque partie "
            "peut s'en retirer par lettre adressée aux autres parties avec un préavis de trois "
            "mois ; les mises à disposition en cours sont menées à leur terme."
        )
    return (
        f"La présente convention prend effet le {_day(agreement.starts_on)}, sous réserve de sa "
        f"signature par toutes les parties, et s'applique jusqu'au {_day(agreement.ends_on)} "
        "inclus. Les mises à disposition en cours à son terme sont menées à leur terme."
    )


def party_sentence(party) -> str:
    who = f"La commune {of_commune(party.commune_name)} (INSEE {party.commune})"
    signatory = party.signatory or "son maire"
    sentence = f"{who}, représentée par {signatory}"
    if party.decision_number:
        sentence += (
            f", dûment habilité(e) par la délibération n° {party.decision_number} du conseil "
            f"municipal du {_day(party.decision_date)}"
        )
    else:
        sentence += ", habilité(e) par une délibération du conseil municipal à intervenir"
    return sentence + " ;"


def agreement_pdf(agreement: AgreementView) -> bytes:
    """The agreement's text: parties (with their council's decision), preamble, articles
    (object, scope, term, money, procedure, insurance and liability, termination, disputes)
    and a signature block per party."""
    title = f"Convention {agreement.reference}"
    pdf = _Document(title)
    pdf.alias_nb_pages()
    pdf.add_page()
    pdf.write_line("CONVENTION DE MISE À DISPOSITION ENTRE COMMUNES", 14, bold=True)
    pdf.write_line(f"{agreement.title} — référence {agreement.reference}", 11, bold=True, gap=4)
    pdf.write_line("Entre les soussignées :", bold=True)
    for party in agreement.parties:
        pdf.write_line(party_sentence(party))
    pdf.write_line("ci-après « les parties »,", gap=3)
    pdf.write_line(LEGAL_BASIS)
    pdf.write_line(
        "Considérant l'intérêt, pour une bonne organisation des services publics locaux, de "
        "mettre en commun des matériels, des services et des compétences entre communes "
        "voisines, sans transfert de compétence ;",
        gap=3,
    )
    pdf.write_line("Il est convenu ce qui suit.", bold=True, gap=3)
    articles = [
        (
            "Objet",
            "La présente convention fixe les conditions dans lesquelles chaque partie peut "
            "mettre à la disposition des autres, à leur demande et selon ses disponibilités, "
            "des biens, services ou agents relevant du champ défini à l'article 2.",
        ),
        ("Champ", f"Sont couverts : {scope_sentence(agreement)}."),
        ("Durée", term_sentence(agreement)),
        ("Conditions financières", TARIFF_CLAUSES[agreement.tariff]),
        (
            "Modalités",
            "Chaque mise à disposition fait l'objet d'une demande sur Mutualis, acceptée par la "
            "commune qui prête. Un état des lieux est dressé à la remise et à la restitution. "
            "Les factures rappellent la référence de la présente convention.",
        ),
        ("Assurances et responsabilité", agreement.insurance),
        (
            "Résiliation",
            "En cas de manquement d'une partie à ses obligations, les autres peuvent résilier "
            "la convention à son égard un mois après une mise en demeure restée sans effet.",
        ),
        ("Règlement des litiges", agreement.disputes),
    ]
    for n, (heading, body) in enumerate(articles, start=1):
        pdf.write_line(f"Article {n} — {heading}", 11, bold=True, gap=1)
        pdf.write_line(body, gap=3)
    pdf.write_line(f"Fait en {len(agreement.parties)} exemplaires originaux.", gap=4)
    for party in agreement.parties:
        signed = f", le {_day(party.signed_on)}" if party.signed_on else ", le ……"
        pdf.write_line(
            f"Pour la commune {of_commune(party.commune_name)}{signed}", bold=True, gap=0
        )
        pdf.write_line(party.signatory or "(nom, qualité et signature)", gap=6)
    return bytes(pdf.output())
