# Download the CS224N files from the pinned commit (or a local mirror) and verify each against
# its git blob SHA-1. Local: cluster compute nodes often have no internet.
#
# Where the files come from is not part of what results depend on, only their verified content:
# the mirrors and the base URL reach the jobs as MTB_DATA_MIRROR, MTB_HUB_MIRROR and
# MTB_DATA_BASE_URL (common.smk sets them from `data: mirror:`, `hub: mirror:` and
# `data: base_url:`), not as params, so moving any of them reruns nothing. The `mirror` params
# stay "" and `base_url` the starter repository's URL only so that trees finished before keep
# the params they recorded.
# The outputs are update(): Snakemake keeps them during a forced re-download and puts them back
# if it fails (the job itself moves files in only once all are verified).


localrules:
    download_data,
    download_test_data,


rule download_data:
    output:
        [update(path) for path in DATA_FILES],
        update(f"{DATA_DIR}/PROVENANCE.json"),
    log:
        "logs/download_data/download_data.log",
    conda:
        "../envs/download.yaml"
    params:
        dest=lambda wildcards, output: os.path.dirname(output[-1]),
        base_url=download.RECORDED_BASE_URL,
        commit=config["data"]["commit"],
        files=json.dumps(config["data"]["files"], sort_keys=True),
        mirror="",
        standin_rows=config["data"]["quora_standin_rows"],
    shell:
        "python -m workflow_src.data.download fetch --dest {params.dest:q}"
        " --commit {params.commit:q} --files-json {params.files:q}"
        " --standin-rows {params.standin_rows:q} > {log:q} 2>&1"


# The unlabelled *-test-student.csv files, verified the same way, into their own folder: only
# the submission files read them, so adding or missing one never reruns training. A mirror
# without one skips it and lists it in PROVENANCE.json.
rule download_test_data:
    output:
        update(f"{TEST_DIR}/PROVENANCE.json"),
    log:
        "logs/download_test_data/download_test_data.log",
    conda:
        "../envs/download.yaml"
    params:
        dest=lambda wildcards, output: os.path.dirname(output[0]),
        base_url=download.RECORDED_BASE_URL,
        commit=config["data"]["commit"],
        files=json.dumps(config["data"].get("test_files", {}), sort_keys=True),
        mirror="",
    shell:
        "python -m workflow_src.data.download fetch --dest {params.dest:q}"
        " --commit {params.commit:q} --files-json {params.files:q}"
        " --optional > {log:q} 2>&1"


# The preset's Hugging Face encoder and tokenizer, once, at the revision pinned in config.yaml
# (hub.revisions), into models/<name>/; PROVENANCE.json is written last. Local for the same
# reason as the data: training jobs then load the folder with HF_HUB_OFFLINE=1.
# Defined only when the preset in force names a hub encoder.
if HUB_ENCODER:

    localrules:
        fetch_encoder,

    rule fetch_encoder:
        output:
            ENCODER_PROVENANCE,
        log:
            f"logs/fetch_encoder/{PRESET}.log",
        conda:
            "../envs/train.yaml"
        params:
            name=HUB_ENCODER,
            revision=HUB.get("revisions", {}).get(HUB_ENCODER, ""),
            # a function, not a hard-coded output prefix (snakemake --lint); the same value
            dest=lambda wildcards: ENCODER,
            mirror="",
        message:
            "local job (on the submitting node, before any training job): fetch {params.name}"
            " at revision {params.revision} into {params.dest}/"
        shell:
            "python -m workflow_src.data.encoders fetch --name {params.name:q}"
            " --revision {params.revision:q} --dest {params.dest:q}"
            " > {log:q} 2>&1"
