#!/bin/bash
# On a GPU machine without internet: the teaching-world recipe sweep (tools/gpu_sweep.py), then
# `python benchmarks/bench.py gpu`; results under $OUT. Run from the repository root, with the wheels
# stanlib needs beyond torch (open_clip, ftfy, wcwidth) in .whl/. Budgets: SWEEP_S, BENCH_S seconds;
# WORKERS runs.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
  && export PYTHONPATH=/tmp/site:$PWD || exit 1
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 MPLBACKEND=Agg
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 -c "import torch, open_clip, stanlib; print('torch', torch.__version__, 'open_clip', open_clip.__version__)" || exit 1
mkdir -p $OUT/sweep $OUT/bench
timeout ${SWEEP_S:-330} python3 tools/gpu_sweep.py --out $OUT/sweep --workers ${WORKERS:-8} --budget $(( ${SWEEP_S:-330} - 25 )) > $OUT/sweep.log 2>&1
echo "sweep rc $?"; tail -5 $OUT/sweep.log
timeout ${BENCH_S:-200} python3 benchmarks/bench.py gpu --out $OUT/bench > $OUT/bench.log 2>&1
echo "bench rc $?"; tail -40 $OUT/bench.log
