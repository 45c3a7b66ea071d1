"""Linkage quality against the synthetic truth (evaluation only: linkage never reads truth).

Per source: precision, recall, F1 and counts; recall by true status class; match-weight
histograms of true and false links. The recall denominator is the true (record, person) pairs
among records that entered linkage and whose person is in the census frame; withheld records
are excluded and reported separately.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline_common.errors import require_columns

STATUS_CLASSES = ("native_citizen", "naturalized", "lpr", "temporary", "unauthorized")
WEIGHT_EDGES = [float(x) for x in range(-4, 42, 2)]
PROBABILITY_EDGES = [0.0, 0.5, 0.9, 0.95, 0.99, 0.999, 0.9999, 1.0]


def _ratio(num: int, den: int) -> float | None:
    return round(num / den, 5) if den else None


def evaluate_linkage(
    links: pd.DataFrame,
    entered: dict[str, pd.Series],
    withheld: dict,
    frame_person_ids: pd.Series,
    truth_records: pd.DataFrame,
    truth_persons: pd.DataFrame,
) -> dict:
    """Quality figures per source.

    Parameters
    ----------
    links
        ``linkage/links.parquet`` (``source, record_id, person_id, match_probability`` and
        ``match_weight`` when present).
    entered
        ``{source: record ids that entered linkage}`` (after the data-use policy).
    withheld
        ``linkage/withheld.json`` (copied per source into the output).
    frame_person_ids
        Person ids of the census frame (a record whose person is not enumerated cannot link).
    truth_records, truth_persons
        ``truth/records.parquet`` and ``truth/persons.parquet``.
    """
    require_columns(truth_records, ["source", "record_id", "person_id"], "truth/records.parquet")
    require_columns(truth_persons, ["person_id", "status"], "truth/persons.parquet")
    status_of = truth_persons.set_index("person_id")["status"]
    in_frame = set(frame_person_ids.astype(str))
    result: dict = {"sources": {}}
    total = {"tp": 0, "fp": 0, "linkable": 0}
    for source, record_ids in sorted(entered.items()):
        truth = truth_records.loc[truth_records["source"] == source, ["record_id", "person_id"]]
        truth = truth.rename(columns={"person_id": "true_person_id"})
        entered_truth = truth.loc[truth["record_id"].isin(set(record_ids.astype(str)))].copy()
        entered_truth["linkable"] = entered_truth["true_person_id"].isin(in_frame)
        entered_truth["status"] = entered_truth["true_person_id"].map(status_of)
        mine = links.loc[links["source"] == source].merge(truth, on="record_id", how="left")
        mine["correct"] = mine["person_id"] == mine["true_person_id"]
        tp = int(mine["correct"].sum())
        fp = len(mine) - tp
        linkable = int(entered_truth["linkable"].sum())
        fn = linkable - tp
        precision, recall = _ratio(tp, tp + fp), _ratio(tp, linkable)
        f1 = (
            round(2 * precision * recall / (precision + recall), 5)
            if precision and recall
            else None
        )
        correct_ids = set(mine.loc[mine["correct"], "record_id"])
        by_status = {}
        linkable_rows = entered_truth.loc[entered_truth["linkable"]]
        for status in STATUS_CLASSES:
            rows = linkable_rows.loc[linkable_rows["status"] == status]
            hits = int(rows["record_id"].isin(correct_ids).sum())
            by_status[status] = {
                "linkable": len(rows),
                "tp": hits,
                "recall": _ratio(hits, len(rows)),
            }
        entry = {
            "records_in": int(len(truth)),
            "records_entered": int(len(entered_truth)),
            "records_withheld": int(len(truth) - len(entered_truth)),
            "linkable_records": linkable,
            "links": len(mine),
            "tp": tp,
            "fp": fp,
            "fn": fn,
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "recall_by_status": by_status,
            "withheld": withheld.get(source, {}),
        }
        if "match_weight" in mine.columns and len(mine):
            weights = mine["match_weight"].clip(WEIGHT_EDGES[0], WEIGHT_EDGES[-1])
            entry["match_weight_histogram"] = {
                "edges": WEIGHT_EDGES,
                "true_links": np.histogram(weights[mine["correct"]], WEIGHT_EDGES)[0].tolist(),
                "false_links": np.histogram(weights[~mine["correct"]], WEIGHT_EDGES)[0].tolist(),
            }
        if len(mine):
            entry["match_probability_histogram"] = {
                "edges": PROBABILITY_EDGES,
                "true_links": np.histogram(
                    mine.loc[mine["correct"], "match_probability"], PROBABILITY_EDGES
                )[0].tolist(),
                "false_links": np.histogram(
                    mine.loc[~mine["correct"], "match_probability"], PROBABILITY_EDGES
                )[0].tolist(),
            }
        result["sources"][source] = entry
        total["tp"] += tp
        total["fp"] += fp
        total["linkable"] += linkable
    result["overall"] = {
        **total,
        "precision": _ratio(total["tp"], total["tp"] + total["fp"]),
        "recall": _ratio(total["tp"], total["linkable"]),
    }
    result["recall_denominator"] = (
        "true (record, person) pairs among records that entered linkage (withheld records "
        "excluded) whose person is in the census frame"
    )
    return result
