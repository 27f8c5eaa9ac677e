"""Unknown words: the tiny CLIP's word-level tokenizer names them; text heads warn; training stops."""
import json
import warnings

import pytest
import torch

from stanlib.engine.presets import Config, ConfigError, apply_overrides
from stanlib.model.tokenizer import (TINY_VOCAB, UnknownWordsError, WordTokenizer, check_words, cli_main, get_tokenizer,
                               unknown_words, vocabulary)

TWINS = ["gets brighter", "gets darker"]  # the same tokens for the tiny CLIP: "<unk> <unk>"


def tiny_model():
    from stanlib.model import create_model

    torch.manual_seed(0)
    return create_model(clip="stan-tiny", temporal="attn", depth=2, num_frames=2, context_length=16)


def test_unknown_words_of_the_word_tokenizer():
    tok = get_tokenizer("stan-tiny")
    assert unknown_words(TWINS + ["Gets brighter!"], tok) == ["gets", "brighter", "darker"]
    assert unknown_words("a red circle moves left", tok) == []
    assert unknown_words(TWINS, "stan-tiny") == ["gets", "brighter", "darker"]  # a CLIP name works too
    assert torch.equal(tok(TWINS[0]), tok(TWINS[1]))  # why it matters: identical token sequences
    assert vocabulary() == list(TINY_VOCAB)
    extended = WordTokenizer(vocab=TINY_VOCAB + ("brighter", "darker"))
    assert unknown_words(TWINS, extended) == ["gets"]
    assert extended.encode("red")[0] == tok.encode("red")[0]  # appending keeps every id


def test_bpe_and_other_tokenizers_know_every_word():
    assert unknown_words(TWINS, get_tokenizer("ViT-B-32")) == []
    assert unknown_words(TWINS, lambda texts: torch.zeros(len(texts), 4)) == []
    assert vocabulary("ViT-B-32") is None


def test_check_words_raises_or_warns_naming_words_and_tokenizer():
    with pytest.raises(UnknownWordsError) as err:
        check_words(TWINS, "stan-tiny", "the class names")
    message = str(err.value)
    assert all(w in message for w in ("'gets'", "'brighter'", "'darker'", "stan-tiny word-level tokenizer",
                                      "stanlib vocab", "allow_unknown_words"))
    assert err.value.words == ["gets", "brighter", "darker"]
    with pytest.warns(UserWarning, match="'brighter'"):
        assert check_words(TWINS, "stan-tiny", allow=True) == ["gets", "brighter", "darker"]


def test_class_text_embeddings_warns_about_unknown_words():
    from stanlib.engine.losses import class_text_embeddings

    model = tiny_model()
    with pytest.warns(UserWarning, match=r"class names use 3 word\(s\).*'gets', 'brighter', 'darker'"):
        emb = class_text_embeddings(model, TWINS)
    assert torch.allclose(emb[0], emb[1])  # the reason for the warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        class_text_embeddings(model, ["red circle moves left", "red circle moves right"])
        class_text_embeddings(model, TWINS, warn_unknown=False)


class LabelSet(torch.utils.data.Dataset):
    def __init__(self, classes, n=4):
        self.classes, self.n = list(classes), n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return {"frames": torch.randn(2, 3, 64, 64), "label": i % len(self.classes), "video_idx": i}


class CaptionSet(torch.utils.data.Dataset):
    def __init__(self, captions):
        self.captions = list(captions)
        self.tokenizer = get_tokenizer("stan-tiny")

    def __len__(self):
        return len(self.captions)

    def __getitem__(self, i):
        return {"frames": torch.randn(2, 3, 64, 64), "tokens": self.tokenizer(self.captions[i])[0],
                "video_idx": i, "caption_idx": i}


def config(**kw):
    base = dict(name="vocab", clip="stan-tiny", pretrained=None, depth=2, num_frames=2, context_length=16,
                batch_size=2, recipe_batch=2, epochs=1, num_workers=0, amp="off", device="cpu")
    return Config.from_dict({**base, **kw})


@pytest.mark.parametrize("task", ["recognition", "retrieval"])
def test_trainer_stops_on_unknown_words_unless_allowed(tmp_path, task):
    from stanlib.engine.trainer import Trainer

    data = LabelSet(TWINS) if task == "recognition" else CaptionSet(TWINS)
    where = "class names" if task == "recognition" else "training captions"
    with pytest.raises(UnknownWordsError, match=f"the {where} use 3 word.*'gets', 'brighter', 'darker'.*"
                                                "allow_unknown_words=true"):
        Trainer(tiny_model(), data, None, config(task=task, freeze_text=True), out_dir=tmp_path, quiet=True)
    with pytest.warns(UserWarning, match="'darker'"):
        Trainer(tiny_model(), data, None, config(task=task, freeze_text=True, allow_unknown_words=True),
                out_dir=tmp_path, quiet=True)


def test_allow_unknown_words_is_a_checked_config_field():
    assert Config().allow_unknown_words is False
    assert apply_overrides(Config(), ["allow_unknown_words=true"]).allow_unknown_words is True
    with pytest.raises(ValueError, match="allow_unknown_words"):
        apply_overrides(Config(), ["allow_unknown_words=maybe"])
    with pytest.raises(ConfigError, match="allow_unknown_words"):
        Config(allow_unknown_words="yes")


def test_train_cli_names_the_unknown_words(tmp_path, capsys):
    from stanlib.engine.trainer import cli_main as train_main

    root = tmp_path / "data"
    root.mkdir()
    (root / "train.csv").write_text("video,label\na.mp4,gets brighter\nb.mp4,gets darker\n")
    (root / "test.csv").write_text("video,label\nc.mp4,gets brighter\nd.mp4,gets darker\n")
    cfg = config(task="recognition", dataset="generic_label", data_root=str(root), val_split="test",
                 freeze_text=True, out_dir=str(tmp_path / "run"))
    cfg.save(tmp_path / "config.json")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the listed videos do not exist: never loaded here
        assert train_main(["--config", str(tmp_path / "config.json")]) == 2
    err = capsys.readouterr().err
    assert "'brighter'" in err and "'darker'" in err and "stan-tiny word-level tokenizer" in err
    assert not (tmp_path / "run").exists()


def test_vocab_command(capsys):
    assert cli_main([]) == 0
    assert "counterclockwise" in capsys.readouterr().out
    assert cli_main(["a red circle moves left"]) == 0
    assert cli_main(TWINS) == 0                           # the default, stan-tiny-v2, knows the lighting words
    assert cli_main(["--clip", "stan-tiny", *TWINS]) == 1
    out = capsys.readouterr().out
    assert "'gets', 'brighter', 'darker'" in out
    assert cli_main(["--clip", "ViT-B-32", *TWINS]) == 0


def test_config_json_without_the_field_still_loads(tmp_path):
    d = config().to_dict()
    del d["allow_unknown_words"]
    (tmp_path / "old.json").write_text(json.dumps(d))
    assert Config.load(tmp_path / "old.json").allow_unknown_words is False
