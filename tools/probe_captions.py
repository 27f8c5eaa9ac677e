"""Captions probes (docs/experiments.md 2.6): one demo-size captions run with recipe changes.

    RECIPE="verb_anchors=0.5 logit_scale=50" ROW=stan-self python tools/probe_captions.py SEED [STEPS]
    ANCHOR_SCALE=20 ...   the verb anchors' logit scale (default: the recipe's)

Writes runs/probe_cap/<tag>/seed<S>.json (metrics, with ``top1_errors``: why the top-1 video is wrong,
another appearance / motion pair / direction) and the weights, and prints the headline numbers.
"""
import json, os, sys
from dataclasses import asdict, replace
from pathlib import Path
import torch
import stanlib.teaching.experiments as E
from stanlib.teaching.demo import DEMO_STAN

seed = int(sys.argv[1])
steps = int(sys.argv[2]) if len(sys.argv) > 2 else DEMO_STAN.steps
torch.set_num_threads(1)
recipe = replace(DEMO_STAN, steps=steps, n_test=200, head="task", clip="stan-tiny")  # as measured
row = os.environ.get("ROW", "stan-self")
tag = row + f"_steps{steps}"
if os.environ.get("RECIPE"):
    recipe = E.recipe_overrides(recipe, os.environ["RECIPE"])
    tag += "".join(f"_{kv.replace('=', '')}" for kv in os.environ["RECIPE"].split())
if os.environ.get("ANCHOR_SCALE"):  # the anchors' logit scale (default: the recipe's)
    _anchors = E.verb_anchors
    def _scaled(model, recipe):
        head = _anchors(model, recipe)
        head.scale = float(os.environ["ANCHOR_SCALE"])
        return head
    E.verb_anchors = _scaled
    tag += "_anchorscale" + os.environ["ANCHOR_SCALE"]
data = E.load_task("captions", recipe.n_train, recipe.n_test, recipe.data_seed, recipe.num_frames, progress=False)
torch.manual_seed(seed)
model = E.build_model(row, recipe)
rec = E.train_model(model, data, recipe, seed, progress=False)
m = E.evaluate_model(model, data, recipe)
m.pop("preds", None)
out = Path(f"runs/probe_cap/{tag}"); out.mkdir(parents=True, exist_ok=True)
torch.save(model.state_dict(), out / f"seed{seed}.pt")
(out / f"seed{seed}.json").write_text(json.dumps({"metrics": m, "recipe": asdict(recipe), "seconds": rec["seconds"],
                                                   "loss": rec["loss"]}))
print(tag, seed, E.summary(m), m["top1_errors"], {k: round(v["twin"]) for k, v in m["per_pair"].items()},
      rec["seconds"], flush=True)
