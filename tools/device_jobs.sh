#!/bin/bash
# Like tools/device_sweep.sh, for chosen sweep jobs only (arguments: NAME/TASK/ROW/SEED ...).
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
  && export PYTHONPATH=/tmp/site:$PWD || exit 1
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 MPLBACKEND=Agg
mkdir -p $OUT/sweep
timeout ${SWEEP_S:-200} python3 tools/gpu_sweep.py --out $OUT/sweep --workers ${WORKERS:-8} --budget $(( ${SWEEP_S:-200} - 15 )) --jobs "$@" > $OUT/sweep.log 2>&1
echo "rc $?"; cat $OUT/sweep/sweep.md
