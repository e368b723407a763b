"""ALER's golden examples: one valid message of every kind it sends, its tenancy exports as it and as a
spreadsheet writes them, and invalid ones with the problems the gateway reports (published under
``contracts/examples/aler/``)."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

from adapters._golden import CF_ALER, CF_ALER_EXPORT, OCCURRED, SEED, wrong_check_character
from adapters.aler.csv_export import COLUMNS, DELIMITER
from adapters.aler.simulator import aler_arrears_message
from adapters.descriptor import GoldenExamples, Mutation
from gateway.identity.synthetic import generate_tenants

__all__ = ["EXAMPLES", "INVALID", "INVALID_CSV", "VALID_CSV", "valid"]


def _header(kind: str, message_id: str, purpose: str, recipients: list[str]) -> dict[str, Any]:
    return {
        "id_messaggio": message_id,
        "id_correlazione": "ALER-K-0001",
        "tipo_messaggio": kind,
        "versione": "1.0",
        "data_evento": "2026-11-20T09:30:00+01:00",
        "finalita": purpose,
        "destinatari": recipients,
    }


def valid() -> dict[str, dict[str, Any]]:
    """One valid message of every kind ALER sends, by ``tipo_messaggio``."""
    tenant = next(t for t in generate_tenants("S", seed=SEED, limit=50) if t.arrears_cents > 0)
    arrears = aler_arrears_message(tenant, "ALER-M-0001", occurred_at=OCCURRED)
    arrears["intestatario"]["codice_fiscale"] = CF_ALER
    record = {
        **_header("anagrafica-contratto", "ALER-T-0001", "housing-support", ["comune"]),
        "contratto": {"id_contratto": "ALER-C-12345678", "tipo": "SAT", "data_inizio": "2024-03-01",
                      "data_fine": "2029-02-28", "fascia_canone": "accesso", "canone_mensile_euro": "185.50",
                      "canone_oltre_30_reddito": True},
        "unita": {"id_unita": "ALER-U-7654321", "id_edificio": "ALER-B-0042", "via": "Via Esempio",
                  "civico": "12/A", "quartiere": "molise-calvairate", "municipio": 4},
        "intestatario": {"codice_fiscale": CF_ALER},
        "nucleo": {
            "tipologia": "single-mother-minors",
            "componenti": [
                {"relazione": "intestatario", "fascia_eta": "age-25-44", "minore": False, "over_65": False,
                 "disabilita": False},
                {"relazione": "child", "fascia_eta": "age-6-13", "minore": True, "over_65": False,
                 "disabilita": True},
            ],
        },
        "isee": {"fascia": "isee-0-6000"},
        "morosita": {"importo_euro": "1234.50", "mensilita": 7, "dal": "2026-04-01", "tipo": "spese",
                     "stadio": "formal-notice"},
        "segnali_fragilita": ["isolation", "arrears-not-tenant-fault"],
    }
    fragility = {
        **_header("segnalazione-fragilita", "ALER-F-0001", "social-case-management", ["comune"]),
        "contratto": {"id_contratto": "ALER-C-12345678", "quartiere": "san-siro", "municipio": 7},
        "intestatario": {"codice_fiscale": CF_ALER},
        "nucleo": {"tipologia": "adult-with-over-65", "componenti": 2, "presenza_minori": False,
                   "presenza_over_65": True, "presenza_disabilita": True},
        "segnali": ["isolation"],
    }
    care = {
        **_header("richiesta-assistenza", "ALER-A-0001", "care-coordination", ["asst"]),
        "id_richiesta": "ALER-R-0001",
        "stato": "attiva",
        "assistito": {"codice_fiscale": CF_ALER},
        "servizio": "telemedicina",
        "urgenza": "urgente",
        "finestra": {"dal": "2026-11-23", "al": "2026-11-30"},
        "logistica": {"piano": 4, "ascensore": False, "accesso": "porter-lets-in", "fascia_oraria": "morning",
                      "custode_accompagna": True, "lingua_interprete": "ar", "note_accesso": ["call-before-visit"]},
    }
    disclosure = {
        **_header("segnalazione-riservata", "ALER-V-0001", "anti-violence-support", ["cav"]),
        "persona": {"codice_fiscale": CF_ALER},
        "contatto": {"canale": "telefono-sicuro", "telefono_sicuro": "+39 333 000-0000",
                     "fascia_oraria": "weekday-morning"},
    }
    del disclosure["id_correlazione"]
    eviction = {
        **_header("evento-sfratto", "ALER-S-0001", "housing-support", ["comune", "fwa"]),
        "contratto": {"id_contratto": "ALER-C-12345678", "quartiere": "gratosoglio", "municipio": 5},
        "intestatario": {"codice_fiscale": CF_ALER},
        "procedura": {"stadio": "eviction-validated", "scadenza": "2027-01-15"},
    }
    emergency = {
        **_header("evento-emergenza", "ALER-E-0001", "emergency-social", ["pis"]),
        "evento": {"tipo": "fire", "accaduto_il": "2026-11-20T03:15:00+01:00"},
        "luogo": {"id_edificio": "ALER-B-0042", "quartiere": "san-siro", "municipio": 7},
        "nucleo": {"persone": 4, "minori": 2, "over_65": 1, "con_disabilita": 1},
        "persona": {"codice_fiscale": CF_ALER},
        "contratto": {"id_contratto": "ALER-C-12345678"},
    }
    return {
        "segnalazione-morosita": arrears,
        "anagrafica-contratto": record,
        "segnalazione-fragilita": fragility,
        "richiesta-assistenza": care,
        "segnalazione-riservata": disclosure,
        "evento-sfratto": eviction,
        "evento-emergenza": emergency,
    }


# --- ALER's bulk tenancy export (CSV) ------------------------------------------------------------------------


def _export_rows() -> list[dict[str, str]]:
    """Rows as the gateway writes them (codes, ISO dates, ``.`` decimals): one with arrears, one without."""
    return [
        {"id_contratto": "ALER-C-12345678", "tipo_contratto": "SAT", "data_inizio": "2024-03-01",
         "data_fine": "2029-02-28", "id_unita": "ALER-U-7654321", "id_edificio": "ALER-B-0042", "via": "Via Esempio",
         "civico": "12/A", "quartiere": "molise-calvairate", "municipio": "4", "codice_fiscale_intestatario": CF_ALER,
         "tipologia_nucleo": "single-mother-minors", "componenti": "holder:age-25-44:-|child:age-6-13:MD",
         "fascia_canone": "accesso", "fascia_isee": "isee-0-6000", "canone_mensile_euro": "185.50",
         "canone_oltre_30_reddito": "si", "morosita_euro": "1234.50", "morosita_mensilita": "7",
         "morosita_dal": "2026-04-01", "morosita_tipo": "spese", "morosita_stadio": "formal-notice",
         "segnali_fragilita": "isolation|arrears-not-tenant-fault", "data_aggiornamento": "2026-11-20T09:30:00+01:00"},
        {"id_contratto": "ALER-C-12345679", "tipo_contratto": "SAP", "data_inizio": "1998-07-15", "data_fine": "",
         "id_unita": "ALER-U-7654322", "id_edificio": "ALER-B-0043", "via": "Piazzale Esempio", "civico": "3",
         "quartiere": "san-siro", "municipio": "7", "codice_fiscale_intestatario": CF_ALER_EXPORT,
         "tipologia_nucleo": "adult-with-over-65", "componenti": "holder:age-45-64:-|parent:age-75-84:AD",
         "fascia_canone": "protezione", "fascia_isee": "isee-6000-20000", "canone_mensile_euro": "62.00",
         "canone_oltre_30_reddito": "no", "morosita_euro": "", "morosita_mensilita": "", "morosita_dal": "",
         "morosita_tipo": "", "morosita_stadio": "", "segnali_fragilita": "", "data_aggiornamento":
         "2026-11-20T09:30:00+01:00"},
    ]


def _spreadsheet_rows() -> list[dict[str, str]]:
    """The same rows as an Italian spreadsheet writes them: labels and aliases, decimal comma, dd/mm/yyyy."""
    first, second = _export_rows()
    first |= {"data_inizio": "01/03/2024", "data_fine": "28/02/2029", "via": 'Via "Esempio"; scala B',
              "quartiere": "Molise Calvaire", "componenti": "intestatario:25-44 anni:-|figlia:6-13 anni:DM",
              "fascia_isee": "ISEE fino a 6.000 €", "canone_mensile_euro": "185,50", "canone_oltre_30_reddito": "Sì",
              "morosita_euro": "1234,5", "morosita_dal": "01/04/2026", "morosita_stadio": "Diffida / messa in mora"}
    second |= {"data_inizio": "15/07/1998", "quartiere": "S. Siro", "tipologia_nucleo": "Adulto con persona over 65",
               "canone_mensile_euro": "62", "canone_oltre_30_reddito": "NO"}
    return [first, second]


_SPREADSHEET_COLUMNS = (*COLUMNS[10:13], *COLUMNS[:10], *COLUMNS[13:])
"""A column order of ALER's own: the holder and the household first."""


def _csv(rows: list[dict[str, str]], *, columns: tuple[str, ...] = COLUMNS, bom: bool = False,
         newline: str = "\r\n", blank_line: bool = False, delimiter: str = DELIMITER) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator=newline)
    writer.writerow(columns)
    for k, row in enumerate(rows):
        if blank_line and k:
            buffer.write(newline)
        writer.writerow([row.get(column, "") for column in columns])
    return ("\ufeff" if bom else "").encode("utf-8") + buffer.getvalue().encode("utf-8")


def _with_cells(row: int, **cells: str) -> bytes:
    rows = _export_rows()
    rows[row] |= cells
    return _csv(rows)


def _short_row() -> bytes:
    lines = _csv(_export_rows()).decode("utf-8").split("\r\n")
    lines[2] = lines[2].rsplit(DELIMITER, 1)[0]  # the second data row loses its last field
    return "\r\n".join(lines).encode("utf-8")


VALID_CSV: dict[str, Callable[[], bytes]] = {
    "esportazione-contratti": lambda: _csv(_export_rows()),
    "esportazione-contratti-foglio-di-calcolo": lambda: _csv(
        _spreadsheet_rows(), columns=_SPREADSHEET_COLUMNS, bom=True, newline="\n", blank_line=True),
}
"""ALER's tenancy exports (``text/csv``): as the gateway writes one, and as a spreadsheet does (byte-order mark,
LF, a blank line, another column order, labels and aliases, decimal comma, dd/mm/yyyy, a quoted ``;``)."""

INVALID_CSV: dict[str, tuple[Callable[[], bytes], list[tuple[str, str]]]] = {
    "export-missing-column": (lambda: _csv(_export_rows(), columns=tuple(c for c in COLUMNS if c != "fascia_isee")),
                              [("/header/fascia_isee", "missing")]),
    "export-unknown-column": (lambda: _csv(_export_rows(), columns=(*COLUMNS, "nome_intestatario")),
                              [(f"/header/{len(COLUMNS)}", "extra_forbidden")]),
    "export-comma-separated": (lambda: _csv(_export_rows(), delimiter=","),
                               [("/header/0", "extra_forbidden"), *((f"/header/{c}", "missing") for c in COLUMNS)]),
    "export-bad-check-character": (lambda: _with_cells(1, codice_fiscale_intestatario=wrong_check_character(
        CF_ALER_EXPORT)), [("/rows/1/codice_fiscale_intestatario", "value_error")]),
    "export-unknown-quartiere": (lambda: _with_cells(0, quartiere="Brera"), [("/rows/0/quartiere", "value_error")]),
    "export-impossible-date": (lambda: _with_cells(1, data_inizio="31/02/1998"),
                               [("/rows/1/data_inizio", "date_from_datetime_parsing")]),
    "export-incomplete-arrears": (lambda: _with_cells(0, morosita_tipo=""), [("/rows/0/morosita_tipo", "missing")]),
    "export-arrears-without-amount": (lambda: _with_cells(1, morosita_mensilita="3"),
                                      [("/rows/1/morosita_euro", "missing")]),
    "export-no-holder": (lambda: _with_cells(0, componenti="spouse-partner:age-25-44:-|child:age-6-13:MD"),
                         [("/rows/0/componenti", "value_error")]),
    "export-flags-disagree-with-age": (lambda: _with_cells(1, componenti="holder:age-45-64:-|parent:age-75-84:D"),
                                       [("/rows/1/componenti", "value_error")]),
    "export-wrong-field-count": (_short_row, [("/rows/1", "field_count")]),
    "export-duplicate-contract": (lambda: _with_cells(1, id_contratto="ALER-C-12345678"),
                                  [("/rows/1/id_contratto", "duplicate")]),
    "export-not-utf8": (lambda: _csv(_spreadsheet_rows()).decode("utf-8").encode("cp1252"), [("", "utf-8")]),
}
"""Invalid exports: name -> (how it is made, the problems the gateway reports for it)."""


INVALID: dict[str, tuple[Mutation, list[tuple[str, str]]]] = {
    "arrears-unknown-field": (("segnalazione-morosita", "intestatario/nome", "Mario"),
                              [("/intestatario/nome", "extra_forbidden")]),
    "arrears-bad-check-character": (("segnalazione-morosita", "intestatario/codice_fiscale",
                                     wrong_check_character(CF_ALER)),
                                    [("/intestatario/codice_fiscale", "value_error")]),
    "arrears-wrong-type": (("segnalazione-morosita", "morosita/mensilita", "sette"),
                           [("/morosita/mensilita", "int_parsing")]),
    "record-unknown-quartiere": (("anagrafica-contratto", "unita/quartiere", "Brera"),
                                 [("/unita/quartiere", "value_error")]),
    "fragility-missing-field": (("segnalazione-fragilita", "nucleo/presenza_minori", ...),
                                [("/nucleo/presenza_minori", "missing")]),
    "care-unknown-service": (("richiesta-assistenza", "servizio", "psychological-support"),
                             [("/servizio", "value_error")]),
    "disclosure-with-contract": (("segnalazione-riservata", "contratto", {"id_contratto": "ALER-C-12345678"}),
                                 [("/contratto", "extra_forbidden")]),
    "eviction-impossible-date": (("evento-sfratto", "procedura/scadenza", "2027-02-30"),
                                 [("/procedura/scadenza", "date_from_datetime_parsing")]),
    "emergency-unknown-event": (("evento-emergenza", "evento/tipo", "terremoto"),
                                [("/evento/tipo", "value_error")]),
    "unknown-tipo-messaggio": (("segnalazione-morosita", "tipo_messaggio", "segnalazione-sfratto"),
                               [("/tipo_messaggio", "literal_error")]),
    "malformed-json": (b'{"id_messaggio": "ALER-M-0009", "tipo_messaggio": "segnalazione-morosita",',
                       [("", "json")]),
}
"""Invalid example name -> (how it is made from a valid one, the problems it must produce)."""

EXAMPLES = GoldenExamples(
    valid=valid, invalid=INVALID,
    valid_files={f"{name}.csv": make for name, make in VALID_CSV.items()},
    invalid_files={f"{name}.csv": made for name, made in INVALID_CSV.items()},
    files_content_type="text/csv",
)
