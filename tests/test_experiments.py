"""Miniature experiments: metrics, twin batches, order (in)variance, caching, tables."""
import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from stanlib.teaching import experiments as ex
from stanlib.engine.losses import orthogonal_classes

TINY = replace(ex.QUICK, pretrained="none", steps=2)  # random CLIP: the test does not need the shipped one


@pytest.fixture(scope="module")
def motion():
    return ex.load_task("motion", n_train=16, n_test=20, seed=0, num_frames=4, progress=False)


def test_direction_metrics_order_blind_is_exactly_half_and_ties_count_wrong():
    labels = torch.tensor([0, 1, 6, 7])                    # two reversed pairs, clip i's twin is i^1
    logits = torch.randn(2, 10).repeat_interleave(2, 0)    # twins get identical scores (order-blind)
    m = ex.direction_metrics(logits, labels, ex.synth.PAIR_NAMES)
    assert m["direction"] == 50.0
    assert set(m["per_pair"]) == {"left/right", "rotate cw/ccw"}
    perfect = torch.nn.functional.one_hot(labels, 10).float()
    assert ex.direction_metrics(perfect, labels, ex.synth.PAIR_NAMES)["direction"] == 100.0
    assert ex.direction_metrics(torch.zeros(4, 10), labels, ex.synth.PAIR_NAMES)["direction"] == 0.0


def test_task_twins_are_exact_reversals(motion):
    for split in ("train", "test"):
        frames, twin = getattr(motion, f"{split}_frames"), getattr(motion, f"{split}_twin")
        labels = getattr(motion, f"{split}_labels")
        assert (twin >= 0).all()
        assert torch.equal(frames[3], frames[twin[3]].flip(0))
        assert torch.equal(labels ^ 1, labels[twin])


def test_twin_batches_hold_each_clip_with_its_reversal(motion):
    order = ex.batch_order(motion, batch_size=4, steps=6, rng=np.random.default_rng(0))
    twin = motion.train_twin
    for idx in order:
        assert len(idx) == 4 and set(twin[idx].tolist()) == set(idx.tolist())
    # the first epoch (4 batches of 2 pairs = 8 pairs) sees every training clip once
    assert sorted(np.concatenate(order[:4]).tolist()) == list(range(16))
    plain = ex.batch_order(motion, 4, 2, np.random.default_rng(0), twins=False)
    assert any(set(twin[i].tolist()) != set(i.tolist()) for i in plain)


def test_meanpool_is_order_blind_and_stan_is_not(motion):
    clip = motion.test_frames[:1]
    both = torch.cat([clip, clip.flip(1)])
    torch.manual_seed(0)
    emb = ex.encode_clips(ex.build_model("meanpool", TINY), both)
    blind = (emb[0] - emb[1]).abs().max()
    assert blind < 1e-5  # equal up to float rounding of the sum over frames
    torch.manual_seed(0)
    stan = ex.build_model("stan-self", TINY)
    with torch.no_grad():  # the zero-initialised temporal_fc hides order at init; open it up
        for m in stan.branch.temporal:
            torch.nn.init.normal_(m.temporal_fc.weight, std=0.1)
    emb = ex.encode_clips(stan, both)
    assert (emb[0] - emb[1]).abs().max() > max(1e-4, 100 * blind)  # small before training, but real


def test_run_one_caches_and_meanpool_direction_is_exactly_half(tmp_path):
    res = ex.run_one("motion", "meanpool", 0, TINY, tmp_path, progress=False)
    assert res["metrics"]["direction"] == 50.0 and len(res["loss"]) == TINY.steps
    files = list((tmp_path / "results").glob("motion__meanpool__seed0__*.json"))
    assert len(files) == 1
    again = ex.run_one("motion", "meanpool", 0, TINY, tmp_path, progress=False)  # served from the cache
    assert again == res
    res2 = ex.run_one("captions", "zero-shot", 0, TINY, tmp_path, progress=False)
    assert res2["metrics"]["twin"] == 50.0  # the video picks between its caption and the reversed twin's
    table = ex.results_table([res, dict(res, seed=1)], "motion", ["meanpool"])
    assert "50.0 ± 0.0" in table and "| 2 |" in table
    report = ex.write_report(ex.load_results(tmp_path), tmp_path)
    assert "**motion**" in report.read_text() and (tmp_path / "results.json").is_file()


def test_cli_list_and_unknown_row(capsys):
    assert ex.cli_main(["list"]) == 0
    assert "stan-self" in capsys.readouterr().out
    with pytest.raises(ValueError, match="unknown row"):
        ex.build_model("nope", TINY)
    with pytest.raises(SystemExit):
        ex.cli_main(["run", "--rows", "nope"])


def test_orthogonal_head_is_fixed_orthonormal_and_the_first_clips_motion_head(motion):
    assert ex.Recipe().head == "task" and len({ex.Recipe(head=h).key() for h in ex.HEADS}) == len(ex.HEADS)
    assert [ex.resolve_head(ex.Recipe(), t) for t in ("motion", "appearance")] == ["orthogonal", "text"]
    assert ex.resolve_head(ex.Recipe(head="text"), "motion") == "text"
    # the default recipes use the paper's class-name head on every task; FIRST_CLIP the orthonormal motion head
    assert [ex.resolve_head(ex.task_recipe(t), t) for t in ("motion", "appearance")] == ["text", "text"]
    first = [ex.resolve_head(ex.task_recipe(t, ex.FIRST_CLIP), t) for t in ("motion", "appearance")]
    assert first == ["orthogonal", "text"]
    assert ex.OMIT_FROM_KEY["head"] == "text"  # results cached before the head field existed used "text"
    model = ex.build_model("meanpool", TINY)
    head = ex.recognition_head(model, motion, TINY)
    vectors = head.class_embeddings
    assert vectors.shape == (10, model.embed_dim)
    assert torch.allclose(vectors @ vectors.t(), torch.eye(10), atol=1e-5)
    assert torch.equal(vectors, ex.recognition_head(model, motion, TINY).class_embeddings)  # deterministic
    assert torch.allclose(vectors, orthogonal_classes(10, model.embed_dim), atol=1e-6)
    text = ex.recognition_head(model, motion, replace(TINY, head="text")).class_embeddings
    assert not torch.allclose(text, vectors, atol=0.1)
    with pytest.raises(ValueError, match="dimensions"):
        orthogonal_classes(20, 8)


def test_linear_head_option_trains_the_head(motion):
    recipe = replace(TINY, head="linear")
    assert recipe.key() != TINY.key()
    torch.manual_seed(0)
    model = ex.build_model("meanpool", recipe)
    head = ex.recognition_head(model, motion, recipe)
    assert head.linear is not None
    record = ex.train_model(model, motion, recipe, progress=False, eval_every=recipe.steps)
    assert record["trainable"] > sum(p.numel() for p in model.clip.visual.parameters())  # visual tower + head
    trained = record["head"].linear.weight
    assert not torch.allclose(trained, recipe.logit_scale * head.class_embeddings)  # the head moved
    final = ex.evaluate_model(model, motion, recipe, head=record["head"])
    assert final["preds"] == record["eval"][-1][1]["preds"]
    with pytest.raises(ValueError, match="head"):
        ex.recognition_head(model, motion, replace(TINY, head="mlp"))


def test_freeze_text_keeps_the_text_tower_in_retrieval(tmp_path):
    recipe = replace(TINY, freeze_text=True)
    assert ex.Recipe().key() == ex.Recipe(freeze_text=False).key() and recipe.key() != TINY.key()
    data = ex.load_task("captions", recipe.n_train, recipe.n_test, 0, recipe.num_frames, progress=False)
    torch.manual_seed(0)
    model = ex.build_model("stan-self", recipe)
    before = {k: v.clone() for k, v in model.clip.state_dict().items()}
    ex.train_model(model, data, recipe, progress=False)
    changed = [k for k, v in model.clip.state_dict().items() if not torch.equal(before[k], v)]
    assert changed and all(k.startswith("visual.") for k in changed)


def test_run_one_records_the_device(tmp_path):
    res = ex.run_one("motion", "zero-shot", 0, TINY, tmp_path, progress=False, device="cpu")
    assert res["device"].startswith("cpu")


def test_flush_denormals_inside_the_block_only():
    import platform

    denormal = torch.tensor([1e-40])  # below float32's smallest normal number (1.2e-38)
    from stanlib.engine.trainer import flush_denormals

    with flush_denormals():
        inside = (denormal * 1.0).item()
    after = (denormal * 1.0).item()
    assert after > 0  # the default is restored
    if platform.machine() in ("x86_64", "AMD64"):
        assert inside == 0.0


def test_cache_key_follows_the_world_version(monkeypatch):
    from stanlib.teaching import synth

    key = TINY.key()
    monkeypatch.setattr(synth, "WORLD_VERSION", synth.WORLD_VERSION + 1)
    assert TINY.key() != key  # a re-drawn world never serves results cached from the old one


def test_verb_negatives_and_anchors_add_their_terms():
    plain_recipe = replace(TINY, verb_negatives=False, verb_anchors=0.0)
    verb_recipe = replace(TINY, verb_negatives=ex.FIRST_CLIP["verb_negatives"],
                          verb_anchors=ex.FIRST_CLIP["verb_anchors"])
    assert not ex.Recipe().verb_negatives and ex.Recipe().verb_anchors == 0.0   # the default: plain InfoNCE (paper)
    assert verb_recipe.verb_negatives and verb_recipe.verb_anchors == 1.0      # the first tiny CLIP's recipe
    # retrieval-only fields leave the recognition tasks' cache keys alone, and change the captions key
    assert plain_recipe.key("motion") == verb_recipe.key("motion")
    assert plain_recipe.key("captions") != verb_recipe.key("captions")
    data = ex.load_task("captions", TINY.n_train, TINY.n_test, 0, TINY.num_frames, progress=False)
    torch.manual_seed(0)
    model = ex.build_model("stan-self", TINY).eval()
    frames = ex.to_model_input(data.train_frames[:4], "cpu")
    caps = [c[0] for c in data.train_captions[:4]]
    motions = data.train_labels[:4]
    crit = ex.ContrastiveLoss(TINY.logit_scale)
    assert ex.verb_anchors(model, plain_recipe) is None
    plain = ex.retrieval_loss(model, frames, caps, motions, plain_recipe, crit)
    verbs = ex.retrieval_loss(model, frames, caps, motions, replace(plain_recipe, verb_negatives=True), crit)
    # the verb term is a cross-entropy over 10 captions (> 0); the InfoNCE part is the same
    assert verbs.item() > plain.item() + 1e-3
    anchors = ex.verb_anchors(model, verb_recipe)
    assert torch.allclose(anchors.class_embeddings, ex.orthogonal_classes(10, model.embed_dim), atol=1e-6)
    with_anchors = ex.retrieval_loss(model, frames, caps, motions, replace(plain_recipe, verb_anchors=0.5), crit,
                                     anchors)
    text = model.encode_text(model.tokenize(caps))
    expect = plain + 0.5 * (anchors(model.encode_video(frames), motions) + anchors(text, motions))
    assert torch.allclose(with_anchors, expect, atol=1e-4)
    verbs.backward()
    assert model.clip.token_embedding.weight.grad.abs().sum() > 0   # the text tower learns from the verb term


def test_same_appearance_batches_group_reversal_pairs_by_colour_and_shape():
    data = ex.load_task("captions", 200, 20, 0, 4, progress=False)   # ~4 reversal pairs per colour x shape
    order = ex.batch_order(data, 8, 20, np.random.default_rng(0), twins=True, same_appearance=2)
    app, twin = data.train_appearance.numpy(), data.train_twin.numpy()
    for idx in order:
        assert len(idx) == 8 and len(set(idx.tolist())) == 8
        assert (twin[idx[0::2]] == idx[1::2]).all()                     # still twin batches
    # groups really share an appearance more often than random pairs would
    same = np.mean([app[idx[0]] == app[idx[2]] for idx in order])
    random_same = np.mean([app[idx[0]] == app[idx[2]] for idx in ex.batch_order(data, 8, 20, np.random.default_rng(0))])
    assert same > 0.8 and same > random_same


def test_cli_captions_flags_reach_the_recipe(tmp_path, capsys):
    argv = ["run", "--quick", "--tasks", "captions", "--rows", "zero-shot", "--seeds", "0", "--out", str(tmp_path),
            "--pretrained", "none", "--no-verb-negatives", "--verb-anchors", "0.5", "--same-appearance", "2"]
    assert ex.cli_main(argv) == 0
    (res,) = ex.load_results(tmp_path)
    assert res["recipe"]["verb_negatives"] is False and res["recipe"]["verb_anchors"] == 0.5
    assert res["recipe"]["same_appearance"] == 2 and res["recipe_key"] in capsys.readouterr().out
    m = res["metrics"]   # misses of the top-1 video, by reason (R@1 also counts an own video tied at the top as a miss)
    assert 0 < sum(m["top1_errors"].values()) <= 100 - m["t2v"]["R@1"] + 1e-3


def test_task_recipes_and_explicit_changes_win():
    assert ex.task_recipe("motion") == replace(ex.Recipe(), head="text")
    assert ex.task_recipe("appearance") == ex.Recipe()
    assert ex.task_recipe("motion", ex.FIRST_CLIP).head == "task"    # explicit changes win over TASK_RECIPES
    cap = ex.task_recipe("captions")
    assert (cap.batch_size, cap.lr_mult) == (32, 3.0) and cap.key("captions") != ex.Recipe().key("captions")
    assert ex.task_recipe("captions", {"batch_size": 16}).batch_size == 16     # the user's flag wins
    with pytest.raises(ValueError, match="unknown task 'nope'"):
        ex.task_recipe("nope")
    # the CLI gives each task its own recipe; --quick keeps the quick sizes everywhere
    args = ex._parser().parse_args(["run", "--tasks", "motion", "captions", "--lr", "1e-4"])
    recipes = ex._recipes_from_args(args)
    assert recipes["motion"] == replace(ex.task_recipe("motion"), lr=1e-4)
    assert recipes["captions"] == replace(cap, lr=1e-4)
    quick = ex._recipes_from_args(ex._parser().parse_args(["run", "--quick", "--tasks", "captions"]))
    assert quick["captions"] == replace(ex.QUICK, lr_mult=cap.lr_mult)     # the task's recipe at the quick sizes


@pytest.mark.parametrize("name", list(ex.RECIPE_SETS))
def test_each_recipe_set_finds_its_committed_runs(name):
    """`--recipe paper` (the default) and `--recipe first-clip` give the recipes of the committed result files."""
    recipes = ex._recipes_from_args(ex._parser().parse_args(["run", "--recipe", name]))
    assert recipes == {t: ex.task_recipe(t, ex.RECIPE_SETS[name]) for t in ex.TASK_KINDS}
    for task, recipe in recipes.items():
        files = list((ex.RESULTS_DIR / "results").glob(f"{task}__stan-self__seed*__{recipe.key(task)}.json"))
        assert len(files) == 3, (name, task, recipe.key(task))
        assert all(json.loads(f.read_text())["recipe"].get("clip", "stan-tiny") == recipe.clip for f in files)


def test_recipe_overrides_parse_types_and_name_bad_keys():
    r = ex.recipe_overrides(ex.Recipe(), "steps=600 lr=1e-3 twin_batches=0 verb_negatives=true pretrained=none")
    assert (r.steps, r.lr, r.twin_batches, r.verb_negatives, r.pretrained) == (600, 1e-3, False, True, "none")
    with pytest.raises(ValueError, match="'stepz=3'.*steps"):
        ex.recipe_overrides(ex.Recipe(), "stepz=3")
    with pytest.raises(ValueError, match="steps takes a int"):
        ex.recipe_overrides(ex.Recipe(), "steps=many")


def test_top1_errors_split_the_misses_by_kind():
    # 5 captions, one look: two right, then same look + another pair, same pair reversed, same motion (another clip)
    labels = torch.tensor([0, 1, 2, 3, 0])          # motion classes (pair = label // 2)
    look = torch.tensor([7, 7, 7, 7, 7])
    top = torch.tensor([0, 1, 0, 2, 0])
    err = ex.top1_errors(top, labels, look)
    # 1 -> 1 right; 0 -> 0 right; 2 -> 0: pair 1 vs 0 = pair error; 3 -> 2: same pair, reversed = direction;
    # 4 -> 0: same look and motion, another clip = other
    assert err == pytest.approx({"appearance": 0.0, "pair": 20.0, "direction": 20.0, "other": 20.0})
    look2 = torch.tensor([7, 7, 8, 7, 7])   # clip 2 now has another look: caption 2 (-> 0) and 3 (-> 2) miss it
    err2 = ex.top1_errors(top, labels, look2)
    assert err2 == pytest.approx({"appearance": 40.0, "pair": 0.0, "direction": 0.0, "other": 20.0})
    assert sum(err2.values()) == pytest.approx(60.0)   # = 100 - R@1 (2 of 5 right)


def test_result_files_are_written_atomically(tmp_path):
    """Runs side by side share an output folder: a file is replaced whole, never left half-written."""
    target = tmp_path / "results" / "motion__meanpool__seed0__x.json"
    ex.write_atomic(target, '{"a": 1}\n')
    ex.write_atomic(target, '{"a": 2}\n')
    assert target.read_text() == '{"a": 2}\n'
    assert sorted(p.name for p in target.parent.iterdir()) == [target.name]  # no temporary file left behind
