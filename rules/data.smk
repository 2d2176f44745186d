# Download the CS224N files from the pinned commit (or a local mirror) and verify each against
# its git blob SHA-1. Local: cluster compute nodes often have no internet.


localrules:
    download_data,


rule download_data:
    output:
        DATA_FILES,
        f"{DATA_DIR}/PROVENANCE.json",
    log:
        "logs/download_data/download_data.log",
    conda:
        "../envs/download.yaml"
    params:
        dest=lambda wildcards, output: os.path.dirname(output[-1]),
        base_url=config["data"]["base_url"],
        commit=config["data"]["commit"],
        files=json.dumps(config["data"]["files"], sort_keys=True),
        mirror=config["data"]["mirror"],
        standin_rows=config["data"]["quora_standin_rows"],
    shell:
        "python -m workflow_src.data fetch --dest {params.dest} --base-url {params.base_url:q}"
        " --commit {params.commit} --files-json {params.files:q} --mirror={params.mirror:q}"
        " --standin-rows {params.standin_rows} > {log} 2>&1"
