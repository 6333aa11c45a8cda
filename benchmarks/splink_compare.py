"""The same generated world resolved by splink (Fellegi-Sunter on DuckDB), side by side
with ours: pairwise precision, recall and time.

Run: ``python -m benchmarks.splink_compare --rows 200000 [--heldout]`` (needs the
``bench`` extra: ``pip install -e '.[bench]'``). Both resolvers get the rows staged by
our normalisation (folded names, E.164 phones, lower-case addresses, company keys), so
the comparison is of the matching alone. splink is configured as its documentation
suggests for person data: blocking rules on each identifier, comparisons with term
frequency adjustments on names, u estimated by random sampling and m by expectation
maximisation, clusters at match probabilities of 0.9, 0.99 and 0.999.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np
import pandas as pd

from benchmarks import worldgen
from benchmarks.dedupe_quality import pair_counts, stage_world
from config.policies import get_ingest_policies
from tasks.ingest.matching import match_rows


def splink_clusters(staged: pd.DataFrame, thresholds: list[float]) -> list[np.ndarray]:
    """Cluster labels per row of ``staged`` from a splink model trained on these rows, one
    array per clustering threshold."""
    import splink.comparison_library as cl  # the bench extra, not a runtime dependency
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    names = staged["name_key"].astype("object").fillna("")
    frame = pd.DataFrame(
        {
            "unique_id": np.arange(len(staged)),
            "first_name": staged["first_name"].astype("object").str.lower(),
            "name_key": names.where(names != "", None),
            "surname": names.str.split().str[-1].where(names != "", None),
            "email": staged["email"].astype("object"),
            "email_domain": staged["email_domain"].astype("object"),
            "phone": staged["phone"].astype("object"),
            "company_key": staged["company_key"].astype("object"),
            "tax_id": staged["tax_id"].astype("object"),
        }
    )
    settings = SettingsCreator(
        link_type="dedupe_only",
        comparisons=[
            cl.JaroWinklerAtThresholds("name_key", [0.95, 0.88]).configure(
                term_frequency_adjustments=True
            ),
            cl.ExactMatch("email"),
            cl.ExactMatch("phone"),
            cl.JaroWinklerAtThresholds("company_key", [0.95, 0.88]).configure(
                term_frequency_adjustments=True
            ),
            cl.ExactMatch("email_domain").configure(term_frequency_adjustments=True),
            cl.ExactMatch("tax_id"),
        ],
        blocking_rules_to_generate_predictions=[
            block_on("email"),
            block_on("phone"),
            block_on("tax_id"),
            block_on("name_key", "company_key"),
            block_on("name_key", "email_domain"),
            block_on("surname", "company_key"),
        ],
        retain_intermediate_calculation_columns=False,
    )
    linker = Linker(DuckDBAPI().register(frame), settings)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("email"), block_on("name_key", "company_key")], recall=0.8
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=2e6)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("name_key"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("email"))
    predictions = linker.inference.predict(threshold_match_probability=0.5)
    out = []
    for threshold in thresholds:
        clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(
            predictions, threshold_match_probability=threshold
        ).as_pandas_dataframe()
        label = clusters.set_index("unique_id")["cluster_id"].reindex(frame["unique_id"])
        out.append(pd.factorize(label.astype(str))[0])
    return out


def compare(n_rows: int, config: worldgen.WorldConfig) -> dict[str, Any]:
    generated = worldgen.generate(n_rows, config)
    staged = stage_world([g[0] for g in generated])
    good = staged["reason"].isna().to_numpy()
    staged = staged[good].reset_index(drop=True)
    truth = np.array([g[1] for g in generated])[good]
    t0 = time.perf_counter()
    ours = match_rows(staged, pd.DataFrame(), get_ingest_policies().matching)["leader"]
    t1 = time.perf_counter()
    thresholds = [0.9, 0.99, 0.999]
    theirs = splink_clusters(staged, thresholds)
    t2 = time.perf_counter()
    return {
        "world": "heldout" if config == worldgen.HELDOUT else "tuned",
        "rows": n_rows,
        "ours": {**pair_counts(truth, ours.to_numpy()), "seconds": round(t1 - t0, 1)},
        "splink_seconds": round(t2 - t1, 1),
        **{
            f"splink_at_{t}": pair_counts(truth, labels)
            for t, labels in zip(thresholds, theirs, strict=True)
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--heldout", action="store_true")
    args = parser.parse_args()
    config = worldgen.HELDOUT if args.heldout else worldgen.TUNED
    print(json.dumps(compare(args.rows, config), indent=1))


if __name__ == "__main__":
    main()
