"""Motion-task probes (docs/experiments.md 2.5): one demo-size STAN-self run on the motion task with
the classifier's class vectors or the synthetic world patched. Results are cached by `run_one` under
runs/probe/<tag>/results.

    python tools/probe_motion_head.py MODE SEED [STEPS]  # MODE: text | orth | whiten
    SWEEP=60,90  ...   rotation sweep range (degrees)
    RANDOM_ANGLE=1 ... rotation from any start angle (the world before the 12 o'clock start)
    HAND=2.4     ...   clock-hand length / radius
    RECIPE="steps=300 n_train=800" ...   Recipe fields
    ROW=meanpool ...   another experiments row

MODE text = the raw class-name embeddings (the paper's head), orth = fixed random orthonormal class
vectors, whiten = the class-name embeddings centred and whitened (the *equiangular* head of docs/experiments.md 2.5).
"""
import sys, json, torch
from dataclasses import replace
import stanlib.teaching.experiments as E
from stanlib.teaching.demo import DEMO_STAN

mode, seed = sys.argv[1], int(sys.argv[2])
steps = int(sys.argv[3]) if len(sys.argv) > 3 else DEMO_STAN.steps
torch.set_num_threads(1)
orig = E.class_text_embeddings

def patched(model, classes):
    e = orig(model, classes).float()
    if mode == "orth":
        g = torch.Generator().manual_seed(1234)
        q, _ = torch.linalg.qr(torch.randn(e.shape[1], e.shape[0], generator=g))
        return q.t().contiguous()
    if mode == "whiten":
        c = e - e.mean(0)
        u, s, vh = torch.linalg.svd(c, full_matrices=False)
        return (u @ vh)  # all singular values set to 1
    return e

E.class_text_embeddings = patched
import os
from stanlib.teaching import synth
tag = mode
if os.environ.get("SWEEP"):
    synth.SWEEP_RANGE = tuple(float(x) for x in os.environ["SWEEP"].split(","))
    tag += "_sweep" + os.environ["SWEEP"].replace(",", "-")
if os.environ.get("HAND"):
    synth.HAND_LENGTH = float(os.environ["HAND"]); tag += "_hand" + os.environ["HAND"]
if os.environ.get("RANDOM_ANGLE"):  # the world before the clock start: rotation from any angle
    tag += "_randomangle"
    _orig_sample = synth.sample_spec
    def _random_angle(rng, colour, shape, motion, size=64, num_frames=16):
        spec = _orig_sample(rng, colour, shape, motion, size, num_frames)
        if motion in ("clockwise", "counterclockwise"):  # undo the clock mapping: the raw uniform draw
            draw = ((spec.angle - synth.CLOCK_START - spec.sweep / 2) / synth.CLOCK_JITTER + 1.0) * 180.0
            spec = replace(spec, angle=draw)
        return spec
    synth.sample_spec = _random_angle
recipe = replace(DEMO_STAN, steps=steps, head="text", clip="stan-tiny")  # MODE decides the class vectors
for kv in os.environ.get("RECIPE", "").split():
    k, v = kv.split("="); recipe = replace(recipe, **{k: type(getattr(recipe, k))(v)}); tag += f"_{k}{v}"
r = E.run_one("motion", os.environ.get("ROW", "stan-self"), seed, recipe, out_dir=f"runs/probe/{tag}", progress=False)
m = r["metrics"]
print(tag, seed, m["direction"], m["per_pair"], r["train_seconds"], flush=True)
