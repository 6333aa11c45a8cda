"""The lawful basis and source of every contact, decided as it is ingested.

A contact's source is where we first collected it: the fair scan (event, file and row) or
the inbound mail (its Message-ID). Its lawful basis comes from the policy: the source's
basis, raised to ``consent`` when the export carries a consent column answering yes, or to
the contract basis when the contact's company holds a contract; the policy's precedence
picks among them. A later sighting can raise the basis, never replace the first source.

The pure functions take frames and return frames; ``SourceRecorder`` is the small piece of
state the ingestion's store step carries through its one transaction.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from config.governance_policy import ConsentRule, LawfulBasisPolicy, governance_policy
from connectors.database import governance_store as store
from connectors.database.engine import session_scope
from tasks.common.text import fold, fold_arrow

INBOX = "inbox"
EXHIBITION = "exhibition"


def source_kind(detail: dict[str, Any] | None) -> str:
    """An ingested file's kind: the inbox stages its senders as a file marked so."""
    return INBOX if (detail or {}).get("source") == INBOX else EXHIBITION


def consent_columns(headers: Iterable[str], rule: ConsentRule) -> list[str]:
    """The file's headers that record consent (compared folded)."""
    wanted = {fold(h) for h in rule.headers}
    return [h for h in headers if fold(h) in wanted]


def consent_given(raw: pd.Series, rule: ConsentRule) -> pd.Series:
    """Per row of one file, whether a consent column of its raw cells answers yes.

    ``raw`` holds each row as the JSON text of ``{header: cell}`` (every row of a file has
    the same headers), so each consent column is one vectorised extraction.
    """
    given = pd.Series(False, index=raw.index, dtype=bool)
    first = raw.dropna().head(1)
    if first.empty or not rule.headers:
        return given
    try:
        headers = list(json.loads(str(first.iloc[0])))
    except ValueError:
        return given
    yes = {fold(v) for v in rule.agreed}
    for header in consent_columns(headers, rule):
        key = re.escape(json.dumps(header, ensure_ascii=False))
        cells = raw.astype("string").str.extract(key + r'\s*:\s*"((?:[^"\\]|\\.)*)"', expand=False)
        escaped = cells.str.contains("\\", regex=False).fillna(False).astype(bool)
        if escaped.any():  # the JSON text's escapes (\n, \", \u...), as the cell said them
            cells = cells.astype(object)
            cells[escaped] = cells[escaped].map(lambda v: json.loads(f'"{v}"'))
            cells = cells.astype("string")
        folded = pd.Series(fold_arrow(cells).to_pandas(), index=raw.index)
        given |= folded.isin(yes).fillna(False).to_numpy(bool)
    return given


def decide_bases(
    kind: pd.Series, consent: pd.Series, contract: pd.Series, policy: LawfulBasisPolicy
) -> pd.DataFrame:
    """Per row, the lawful basis and the rule that gave it (``source:<kind>``,
    ``consent_column``, ``contract``): the highest in the policy's precedence."""
    rank: dict[str, int] = {basis: i for i, basis in enumerate(policy.precedence)}
    basis = kind.map(policy.by_source).astype(object)
    rule = ("source:" + kind.astype(str)).astype(object)
    candidates = [(consent.astype(bool), "consent", "consent_column")]
    if policy.contract is not None:
        candidates.append((contract.astype(bool), policy.contract, "contract"))
    for applies, better, why in candidates:
        wins = applies & (basis.map(rank) > rank[better])
        basis = basis.mask(wins, better)
        rule = rule.mask(wins, why)
    return pd.DataFrame({"lawful_basis": basis, "basis_rule": rule}, index=kind.index)


def contact_sources(
    rows: pd.DataFrame, files: pd.DataFrame, known: pd.DataFrame, policy: LawfulBasisPolicy
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """What to insert for contacts without a source yet, and the raised bases of the rest.

    ``rows``: the batch's resolved rows (contact_id, source_row_id, file_id, row_number,
    consent, contract), in input order. ``files``: id, name, event, kind. ``known``:
    contact_id, lawful_basis of contacts that already have a source.
    """
    columns = ["contact_id", "lawful_basis", "basis_rule", "source_kind", "source_event",
               "source_file", "source_row_id", "source_row_number"]  # fmt: skip
    if rows.empty:
        return pd.DataFrame(columns=columns), pd.DataFrame(columns=columns[:3])
    rows = rows.rename(columns={"row_number": "source_row_number"}).merge(
        files.rename(columns={"id": "file_id", "name": "source_file", "event": "source_event",
                              "kind": "source_kind"}),
        on="file_id", how="left",
    )  # fmt: skip
    decided = decide_bases(rows["source_kind"], rows["consent"], rows["contract"], policy)
    rows = rows.assign(**decided)
    rank: dict[str, int] = {basis: i for i, basis in enumerate(policy.precedence)}
    rows["rank"] = rows["lawful_basis"].map(rank)
    first = rows.groupby("contact_id", sort=False).head(1).set_index("contact_id")
    best = rows.sort_values("rank", kind="stable").groupby("contact_id", sort=False).head(1)
    best = best.set_index("contact_id")[["lawful_basis", "basis_rule", "rank"]]
    first[["lawful_basis", "basis_rule"]] = best[["lawful_basis", "basis_rule"]]
    first = first.reset_index()
    is_known = first["contact_id"].isin(known["contact_id"])
    fresh = first.loc[~is_known, columns].reset_index(drop=True)
    held = known.set_index("contact_id")["lawful_basis"].map(rank)
    seen = best.loc[best.index.isin(held.index)]
    raised = seen[seen["rank"] < held.reindex(seen.index).to_numpy()]
    return fresh, raised.reset_index()[["contact_id", "lawful_basis", "basis_rule"]]


class SourceRecorder:
    """The lawful basis and source of one ingestion's contacts, inside its transaction.

    Reads first (contracts, sources already held), before the ingestion's writer holds
    the connection; consent is read from each file's raw cells as the store step reads
    them anyway; the rows are written through the same writer.
    """

    def __init__(
        self,
        s: Any,
        files: pd.DataFrame,
        companies: Sequence[int],
        contacts: Sequence[int],
        policy: LawfulBasisPolicy | None = None,
    ) -> None:
        self.policy = policy or governance_policy().lawful_basis
        self.files = files
        self.with_contract = store.companies_with_contract(s, companies)
        self.known = store.known_sources(s, contacts)
        self._consent: list[np.ndarray] = []

    def read_raw(self, raw: pd.Series) -> None:
        """One file's raw cells, in the order the files' rows were concatenated."""
        self._consent.append(consent_given(raw, self.policy.consent).to_numpy(bool))

    def write(self, writer: Any, rows: pd.DataFrame, company_of: pd.Series) -> int:
        """``rows``: contact_id, source_row_id, file_id, row_number of the batch in input
        order (quarantined rows have no contact); ``company_of``: contact id -> company."""
        consent = np.concatenate(self._consent) if self._consent else np.zeros(len(rows), bool)
        rows = rows.assign(consent=consent[: len(rows)]).dropna(subset=["contact_id"])
        rows["contact_id"] = rows["contact_id"].astype(int)
        companies = rows["contact_id"].map(company_of)
        rows["contract"] = companies.isin(self.with_contract).to_numpy(bool)
        fresh, raised = contact_sources(rows, self.files, self.known, self.policy)
        if len(fresh):
            writer.insert(store.ContactSource, fresh)
        if len(raised):
            writer.submit(store.raise_bases, raised.to_dict(orient="records"))
        return len(fresh)


def outranked_by(policy: LawfulBasisPolicy, basis: str) -> list[str]:
    """The bases ``basis`` takes precedence over (and ``unknown``, a backfill's mark)."""
    rank = policy.precedence.index(basis)  # type: ignore[arg-type]
    return ["unknown", *policy.precedence[rank + 1 :]]


@task(name="refresh-lawful-bases", cache_policy=NO_CACHE)
def refresh_lawful_bases() -> int:
    """Contacts whose company signed a contract since they were collected: now held on the
    contract basis where the policy ranks it higher."""
    policy = governance_policy().lawful_basis
    if policy.contract is None:
        return 0
    with session_scope() as s:
        return store.raise_to_contract(s, policy.contract, outranked_by(policy, policy.contract))
