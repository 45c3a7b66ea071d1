# Rules of the synthetic stage (see docs/CONTRACTS.md).


rule synthetic_world:
    input:
        county_table=f"{config['data_dir']}/census_cvap/cvap_acs2009_2013_county_totals.csv",
    output:
        frame=f"{RESULTS}/world/frame.parquet",
        geography=f"{RESULTS}/world/geography.parquet",
        sources=expand(f"{RESULTS}/world/sources/{{source}}.parquet", source=SOURCES),
        persons=f"{RESULTS}/truth/persons.parquet",
        records=f"{RESULTS}/truth/records.parquet",
        parameters=f"{RESULTS}/truth/parameters.json",
    log:
        f"{LOGS}/synthetic_world.log",
    benchmark:
        f"{BENCH}/synthetic_world.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=RESOURCES["synthetic_world"].mem_mb,
        runtime=RESOURCES["synthetic_world"].runtime,
    params:
        synthetic=config["synthetic"],
        seed=config["seed"],
        reference_date=config["reference_date"],
    script:
        "../scripts/synthetic_world.py"
