#!/usr/bin/env bash
# Issue 13/14: the main job's defaults (study essential with no arguments) on minilm-l6, from a published copy. Resumes per cell when rerun.
cd /work/runs
exec /usr/bin/time -v ./bin-main/nsparse study essential --threads 2 --out /work/runs/essential-minilm
