# Rules of the linkage stage (see docs/CONTRACTS.md).
# Policy first: a config that does not withhold 1367-protected records is refused right here.
from linkage.policy import check_policies

check_policies(config, SOURCES)

LINKAGE = f"{RESULTS}/linkage"
PIK_SOURCES = (
    config["linkage"]["pik_sources"] if config["linkage"]["pik_from_ssa"] else []
)
# Sources linked with the Numident PIK wait for it; the others run beside the Numident job.
NO_PIK_SOURCES = [s for s in SOURCES if s != "ssa_numident" and s not in PIK_SOURCES]


rule linkage_standardize_frame:
    input:
        frame=f"{RESULTS}/world/frame.parquet",
    output:
        frame_std=temp(f"{LINKAGE}/frame_std.parquet"),
    log:
        f"{LOGS}/linkage/standardize_frame.log",
    benchmark:
        f"{BENCH}/linkage/standardize_frame.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=RESOURCES["linkage_standardize_frame"].mem_mb,
        runtime=RESOURCES["linkage_standardize_frame"].runtime,
    params:
        settings=linkage_settings(),
    script:
        "../scripts/linkage_frame.py"


rule linkage_link_numident:
    input:
        frame_std=f"{LINKAGE}/frame_std.parquet",
        records=f"{RESULTS}/world/sources/ssa_numident.parquet",
    output:
        links=f"{LINKAGE}/by_source/ssa_numident.parquet",
        report=f"{LINKAGE}/by_source/ssa_numident.json",
        pik=f"{LINKAGE}/pik.parquet",
    log:
        f"{LOGS}/linkage/link_ssa_numident.log",
    benchmark:
        f"{BENCH}/linkage/link_ssa_numident.tsv"
    conda:
        ENV
    threads: config["linkage"]["threads"]
    resources:
        mem_mb=RESOURCES["linkage_link_numident"].mem_mb,
        runtime=RESOURCES["linkage_link_numident"].runtime,
    params:
        settings=linkage_settings(),
    script:
        "../scripts/linkage_link.py"


rule linkage_link_source:
    input:
        frame_std=f"{LINKAGE}/frame_std.parquet",
        records=f"{RESULTS}/world/sources/{{source}}.parquet",
    output:
        links=f"{LINKAGE}/by_source/{{source}}.parquet",
        report=f"{LINKAGE}/by_source/{{source}}.json",
    log:
        f"{LOGS}/linkage/link_{{source}}.log",
    benchmark:
        f"{BENCH}/linkage/link_{{source}}.tsv"
    wildcard_constraints:
        source="|".join(NO_PIK_SOURCES) or "no-source",
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=RESOURCES["linkage_link_source"].mem_mb,
        runtime=RESOURCES["linkage_link_source"].runtime,
    params:
        settings=linkage_settings(),
    script:
        "../scripts/linkage_link.py"


rule linkage_link_source_with_pik:
    input:
        frame_std=f"{LINKAGE}/frame_std.parquet",
        records=f"{RESULTS}/world/sources/{{source}}.parquet",
        pik=f"{LINKAGE}/pik.parquet",
    output:
        links=f"{LINKAGE}/by_source/{{source}}.parquet",
        report=f"{LINKAGE}/by_source/{{source}}.json",
    log:
        f"{LOGS}/linkage/link_{{source}}.log",
    benchmark:
        f"{BENCH}/linkage/link_{{source}}.tsv"
    wildcard_constraints:
        source="|".join(PIK_SOURCES) or "no-source",
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=RESOURCES["linkage_link_source_with_pik"].mem_mb,
        runtime=RESOURCES["linkage_link_source_with_pik"].runtime,
    params:
        settings=linkage_settings(),
    script:
        "../scripts/linkage_link.py"


rule linkage_combine:
    input:
        links=expand(f"{LINKAGE}/by_source/{{source}}.parquet", source=SOURCES),
        reports=expand(f"{LINKAGE}/by_source/{{source}}.json", source=SOURCES),
    output:
        links=f"{LINKAGE}/links.parquet",
        evidence=f"{LINKAGE}/evidence.parquet",
        withheld=report(
            f"{LINKAGE}/withheld.json",
            category="Linkage",
            labels={"output": "records withheld by data-use policy"},
        ),
    log:
        f"{LOGS}/linkage/combine.log",
    benchmark:
        f"{BENCH}/linkage/combine.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=RESOURCES["linkage_combine"].mem_mb,
        runtime=RESOURCES["linkage_combine"].runtime,
    params:
        settings=linkage_settings(),
    script:
        "../scripts/linkage_combine.py"


rule evaluate_linkage:
    input:
        links=f"{LINKAGE}/links.parquet",
        withheld=f"{LINKAGE}/withheld.json",
        frame=f"{RESULTS}/world/frame.parquet",
        sources=expand(f"{RESULTS}/world/sources/{{source}}.parquet", source=SOURCES),
        truth_records=f"{RESULTS}/truth/records.parquet",
        truth_persons=f"{RESULTS}/truth/persons.parquet",
    output:
        evaluation=report(
            f"{RESULTS}/evaluation/linkage.json",
            category="Linkage",
            labels={"output": "linkage quality against truth"},
        ),
    log:
        f"{LOGS}/linkage/evaluate.log",
    benchmark:
        f"{BENCH}/linkage/evaluate.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=RESOURCES["evaluate_linkage"].mem_mb,
        runtime=RESOURCES["evaluate_linkage"].runtime,
    script:
        "../scripts/linkage_evaluate.py"


FINAL_TARGETS.extend(
    [
        f"{LINKAGE}/links.parquet",
        f"{LINKAGE}/evidence.parquet",
        f"{LINKAGE}/withheld.json",
        f"{RESULTS}/evaluation/linkage.json",
    ]
)
