"""The general linker as a library: two small tables of people, generated here.

Table A (a register) holds 250 people, 10 of them twice (duplicate entries with their own ids);
table B holds 180 of A's people and 40 others, with typos in surnames, dates of birth off by
a day and missing ZIP codes. Run from the repository root (a few seconds):

    .venv/bin/python docs/examples/link_two_tables.py
"""

from __future__ import annotations

import dataclasses
import datetime

import numpy as np
import pandas as pd

from linkage.link import LinkSettings, link_any

GIVEN = [
    "Ana",
    "Luis",
    "Mary",
    "John",
    "Sofia",
    "Wei",
    "Fatima",
    "Carlos",
    "Emma",
    "Olga",
    "Ahmed",
    "Grace",
    "Ivan",
    "Lucia",
    "Kenji",
    "Nora",
    "Pedro",
    "Amina",
    "Paul",
    "Mei",
]
FAMILY = [
    "Perez",
    "Gomez",
    "Smith",
    "Nguyen",
    "Kowalski",
    "Chen",
    "Haddad",
    "Garcia",
    "Brown",
    "Ivanova",
    "Okafor",
    "Silva",
    "Kim",
    "Rossi",
    "Tanaka",
    "Murphy",
    "Lopez",
    "Diallo",
]


def people(rng: np.random.Generator, n: int) -> pd.DataFrame:
    """``n`` made-up people: person id, names, date of birth, ZIP code."""
    born = pd.Timestamp("1940-01-01") + pd.to_timedelta(rng.integers(0, 60 * 365, n), unit="D")
    return pd.DataFrame(
        {
            "person": np.arange(n),
            "given": rng.choice(GIVEN, n),
            "family": rng.choice(FAMILY, n),
            "born": born.strftime("%Y-%m-%d"),
            "zip": rng.integers(10000, 10030, n).astype(str),
        }
    )


def swap_letters(rng: np.random.Generator, word: str) -> str:
    i = int(rng.integers(1, len(word) - 1))
    return word[:i] + word[i + 1] + word[i] + word[i + 2 :]


def two_tables(rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Table A (with 10 duplicate entries) and table B (corrupted copies plus other people)."""
    everyone = people(rng, 290)
    table_a = everyone.iloc[:250]
    table_a = pd.concat([table_a, table_a.sample(10, random_state=1)], ignore_index=True)
    table_a.insert(0, "a_id", [f"A{i:03d}" for i in range(len(table_a))])
    in_b = np.r_[rng.choice(250, 180, replace=False), np.arange(250, 290)]
    table_b = everyone.iloc[in_b].reset_index(drop=True)
    for row in range(len(table_b)):
        u = rng.random()
        if u < 0.15:
            table_b.loc[row, "family"] = swap_letters(rng, table_b.loc[row, "family"])
        elif u < 0.25:
            day = datetime.date.fromisoformat(table_b.loc[row, "born"]) + datetime.timedelta(1)
            table_b.loc[row, "born"] = day.isoformat()
        elif u < 0.35:
            table_b.loc[row, "zip"] = None
    table_b.insert(0, "b_id", [f"B{i:03d}" for i in range(len(table_b))])
    return table_a, table_b


def quality(links: pd.DataFrame, truth: set[tuple[str, str]]) -> str:
    found = set(zip(links["left_id"], links["right_id"], strict=True))
    hits = len(found & truth)
    return (
        f"{len(found)} links, {hits} true: precision {hits / max(len(found), 1):.3f}, "
        f"recall {hits / len(truth):.3f}"
    )


def main() -> None:
    table_a, table_b = two_tables(np.random.default_rng(19))
    pairs = table_a.merge(table_b, on="person")
    truth = set(zip(pairs["a_id"], pairs["b_id"], strict=True))
    print(f"A: {len(table_a)} records, B: {len(table_b)} records, {len(truth)} true pairs")
    print(table_b.head(3).to_string(index=False))

    fields_a = {
        "unique_id": "a_id",
        "first_name": "given",
        "last_name": "family",
        "dob": "born",
        "zip": "zip",
    }
    fields_b = {**fields_a, "unique_id": "b_id"}
    settings = LinkSettings(
        comparisons=["name", "dob", "location"],
        blocking_rules=["dob", "name_exact", "zip_last"],
        em_blocking_rules=["dob", "name_exact"],
        threshold=0.9,
        u_max_pairs=1e5,
        return_pairs=True,
        pairs_threshold=0.0,
    )
    links, info = link_any(table_a, table_b, fields_a, fields_b, settings)
    print("\none-to-one:  ", quality(links, truth))
    many, _ = link_any(
        table_a, table_b, fields_a, fields_b, dataclasses.replace(settings, many_to_many=True)
    )
    print("many-to-many:", quality(many, truth))
    print("\nA record of B linked to both entries of a duplicated person:")
    twice = many.loc[many["right_id"].duplicated(keep=False)]
    print(twice.head(2).round(4).to_string(index=False))

    scored = info["scored_pairs"]
    print(f"\n{len(scored)} scored pairs (every blocked pair); precision/recall by threshold:")
    for threshold in (0.5, 0.9, 0.99, 0.999):
        print(
            f"  {threshold:<6}",
            quality(scored.loc[scored["match_probability"] >= threshold], truth),
        )
    print("\ncomparisons used:", info["comparisons"], "| EM trained on:", info["em_blocking_rules"])


if __name__ == "__main__":
    main()
