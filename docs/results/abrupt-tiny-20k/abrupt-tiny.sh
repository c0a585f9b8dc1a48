#!/usr/bin/env bash
# Issue 14, claim 2/3: tiny preset, 20k steps, five data fractions. Resumes when rerun.
cd /work/runs
exec ./bin/nsparse study abrupt --preset tiny --threads 1 --seed 1 --steps 20000 --batch-size 16 --seq-len 64 \
  --lr 1e-3 --warmup 1000 --weight-decay 0.01 --probe-every 100 --omp-every 500 --checkpoint-every 500 \
  --data-fractions 0.6,0.7,0.8,0.9,1.0 --cache /work/runs/cache --out /work/runs/abrupt-tiny-20k
