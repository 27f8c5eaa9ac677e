"""Issue 9 captions probes (docs/experiments.md 2.6): one demo-size captions run with recipe changes.

    RECIPE="verb_anchors=0.5 logit_scale=50" ROW=stan-self python tools/probe_captions.py SEED [STEPS]
    ANCHOR_SCALE=20 ...   the verb anchors' logit scale (default: the recipe's)

Writes runs/probe_cap/<tag>/seed<S>.json (metrics + an error breakdown of the top-1 video: wrong
appearance / wrong motion pair / the reversed twin) and prints the headline numbers.
"""
import json, os, sys
from dataclasses import asdict, replace
from pathlib import Path
import torch
import stanlib.experiments as E
from stanlib.data import synth
from stanlib.demo import DEMO_STAN

seed = int(sys.argv[1])
steps = int(sys.argv[2]) if len(sys.argv) > 2 else DEMO_STAN.steps
torch.set_num_threads(1)
recipe = replace(DEMO_STAN, steps=steps, n_test=200)
row = os.environ.get("ROW", "stan-self")
tag = row + f"_steps{steps}"
for kv in os.environ.get("RECIPE", "").split():
    k, v = kv.split("=")
    typ = type(getattr(recipe, k))
    recipe = replace(recipe, **{k: bool(int(v)) if typ is bool else typ(v)})
    tag += f"_{k}{v}"
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
video = E.encode_clips(model, data.test_frames)
with torch.no_grad():
    text = model.encode_text(model.tokenize(data.test_captions)).float()
sim = torch.nn.functional.normalize(text, dim=-1) @ torch.nn.functional.normalize(video, dim=-1).t()
top = sim.argmax(1)
app = lambda c: " ".join(c.split()[1:3])   # "a red circle moves left" -> "red circle"
n = len(top)
wrong_app = sum(app(data.test_captions[i]) != app(data.test_captions[t]) for i, t in enumerate(top.tolist()))
lab = data.test_labels
wrong_pair = sum(app(data.test_captions[i]) == app(data.test_captions[t]) and lab[i] // 2 != lab[t] // 2
                 for i, t in enumerate(top.tolist()))
m["errors"] = {"appearance": 100 * float(wrong_app) / n, "pair": 100 * float(wrong_pair) / n,
               "twin": 100 * sum(int(t) == int(data.test_twin[i]) for i, t in enumerate(top)) / n}
m.pop("preds", None)
out = Path(f"runs/probe_cap/{tag}"); out.mkdir(parents=True, exist_ok=True)
torch.save(model.state_dict(), out / f"seed{seed}.pt")
(out / f"seed{seed}.json").write_text(json.dumps({"metrics": m, "recipe": asdict(recipe), "seconds": rec["seconds"],
                                                   "loss": rec["loss"]}))
print(tag, seed, E.summary(m), m["errors"], {k: round(v["twin"]) for k, v in m["per_pair"].items()},
      rec["seconds"], flush=True)
