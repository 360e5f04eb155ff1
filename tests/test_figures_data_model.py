"""Figure 1 (the data model): the drawn instance is the experiments' sampler, and its words follow z_k."""

import json

import pytest

from refimpl.errors import InputError
from refimpl.figures import data_model
from refimpl.registry import Context


def test_sentences_follow_their_latent_variable_and_are_recorded(tmp_path):
    cfg = data_model.DataModelConfig(seed=3)
    summary = data_model.run(cfg, Context(out_dir=tmp_path, progress=False, json=True))
    record = json.loads((tmp_path / "fig1.json").read_text())
    assert (tmp_path / "fig1.png").read_bytes()[:4] == b"\x89PNG"
    assert len(record["sentences"]) == cfg.K * cfg.sentences
    for s in record["sentences"]:
        z = summary["latent_variables"][s["label"]]
        concepts = [data_model.CONCEPTS[t // 4] for t in s["tokens"]]
        assert concepts == z                                  # word ℓ is drawn from concept z_{k,ℓ}
        assert s["words"] == [data_model.WORDS[t // 4][t % 4] for t in s["tokens"]]
    assert len({tuple(z) for z in record["latent_variables"]}) == cfg.K  # distinct latent variables


def test_more_classes_than_latent_variables_is_refused():
    with pytest.raises(InputError, match="exceeds nc\\^L = 3"):
        data_model.DataModelConfig(L=1, K=4)
