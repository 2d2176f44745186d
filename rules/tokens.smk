# The tokenizer and every task's tokenised train and dev splits, made once per preset and read
# by every training job (workflow_src/data/tokens.py). Snakemake remakes a split when its data files
# or the tokenizer change (inputs) or the max length, encoder or malformed-row limit change
# (params); the training job also refuses a file made for another max length or encoding.


localrules:
    save_tokenizer,
    tokenize_split,


rule save_tokenizer:
    input:
        ENCODER_PROVENANCE,
    output:
        directory(f"{TOKENS}/tokenizer"),
    log:
        f"logs/save_tokenizer/{PRESET}.log",
    conda:
        "../envs/train.yaml"
    params:
        # a function, not a hard-coded input prefix (snakemake --lint); the same value
        encoder=lambda wildcards: ENCODER,
    shell:
        "HF_HUB_OFFLINE=1 python -m workflow_src.data.tokens tokenizer --encoder {params.encoder:q}"
        " --dest {output:q} > {log:q} 2>&1"


rule tokenize_split:
    input:
        data=lambda wildcards: task_data_files(wildcards.task),
        tokenizer=f"{TOKENS}/tokenizer",
    output:
        layout.tokens_file(TOKENS, "{task}", "{encoding}"),
    log:
        f"logs/tokenize_split/{PRESET}/{{task}}-{{encoding}}.log",
    wildcard_constraints:
        task="|".join(TASK_NAMES),
        encoding="separate|joint",
    conda:
        "../envs/train.yaml"
    params:
        data_dir=DATA_DIR,
        max_length=PRESET_CONFIG["max_length"],
        max_bad_rows=config["data"]["max_bad_rows"],
        encoder=ENCODER,  # a new encoder remakes the splits even where its tokenizer is alike
    shell:
        "python -m workflow_src.data.tokens split --tokenizer {input.tokenizer:q} --data-dir"
        " {params.data_dir:q} --task {wildcards.task:q} --max-length {params.max_length:q}"
        " --encoding {wildcards.encoding:q} --max-bad-rows {params.max_bad_rows:q}"
        " --output {output:q} > {log:q} 2>&1"
