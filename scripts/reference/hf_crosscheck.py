#!/usr/bin/env python3
"""Hugging Face cross-check of our exported checkpoints -- a REFERENCE, NOT PART OF THE PRODUCT.

NativeSparsity contains no Python and its tests never call this. scripts/gpu-check.sh runs it on the
GPU machine, whose Python has PyTorch and transformers, to learn two things from the same minutes:
  1. our checkpoint folders (a dense pre-trained one and a pruned fine-tuned one) load in transformers
     with BertModel.from_pretrained / BertForMaskedLM.from_pretrained, with no missing encoder weight;
  2. transformers computes what we compute on the same token ids: the last hidden state (from
     `nsparse embed --json --hidden`, where that command exists) and the MLM logits at [MASK]
     positions (from `nsparse fill-mask --json`), max absolute difference against a tolerance.
Our side runs on the CPU (the reference backend), transformers in fp32 on the CPU too, so the
difference measures the implementations, not TF32.

Where transformers cannot be imported (as on the development and CI machines) it prints one line
starting with "SKIPPED" that says so and exits 0: nothing was checked, and it says that.
Prints one line per check: PASS/FAIL with the checkpoint, the quantity and the max abs difference.

  python3 scripts/reference/hf_crosscheck.py --nsparse out/gpu-check/bundle/gpu-check --prefix nsparse \\
      --checkpoint DIR [--checkpoint DIR ...]
"""
import argparse
import json
import os
import subprocess
import sys

TEXTS = [
    "the cat sat on the [MASK] .",
    "a [MASK] is a large animal that lives in water",
    "[MASK] ran quickly across the field , and the dog followed .",
]


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nsparse", required=True, help="the nsparse program (or the GPU bundle)")
    ap.add_argument("--prefix", nargs="*", default=[], help="arguments before the command (the bundle's 'nsparse')")
    ap.add_argument("--checkpoint", action="append", required=True, help="a checkpoint folder of ours")
    ap.add_argument("--tolerance", type=float, default=2e-4, help="max abs difference allowed (fp32, CPU vs CPU)")
    return ap.parse_args()


def nsparse(args, *command):
    cmd = [args.nsparse, *args.prefix, *command]
    done = subprocess.run(cmd, capture_output=True, text=True)
    return done.returncode, done.stdout, done.stderr


def has_command(args, name):
    rc, _, _ = nsparse(args, name, "--help")
    return rc == 0


def prunable_zero_share(model):
    names = ("attention.self.query", "attention.self.key", "attention.self.value",
             "attention.output.dense", "intermediate.dense", "output.dense")
    zeros = total = 0
    for name, p in model.named_parameters():
        if name.endswith(".weight") and ".encoder.layer." in "." + name and any(n in name for n in names):
            zeros += int((p == 0).sum()); total += p.numel()
    return zeros, total


def report(ok, what, diff, tol):
    print(f"{'PASS' if ok else 'FAIL'} {what}: max abs diff {diff:.3g} (tolerance {tol:g})")
    return ok


def main():
    args = parse_args()
    try:
        import torch
        import transformers
        from transformers import BertForMaskedLM, BertModel
    except Exception as e:  # ImportError, or a broken install
        print(f"SKIPPED: the Hugging Face cross-check did not run: transformers is not importable here ({type(e).__name__}: {e})")
        return 0
    print(f"transformers {transformers.__version__}, torch {torch.__version__}")
    torch.set_grad_enabled(False)
    all_ok = True
    embed = has_command(args, "embed")
    for ckpt in args.checkpoint:
        name = os.path.basename(os.path.normpath(ckpt))
        model, info = BertModel.from_pretrained(ckpt, output_loading_info=True, attn_implementation="eager")
        model.eval()
        missing = [k for k in info["missing_keys"] if "pooler" not in k]
        all_ok &= report(not missing, f"{ckpt}: BertModel.from_pretrained, missing encoder weights {missing[:5]}", 0.0, 0)
        zeros, total = prunable_zero_share(model)
        print(f"INFO {ckpt}: {zeros}/{total} prunable weights are exactly 0 after loading ({zeros / max(total, 1):.1%})")

        if embed:
            # The pooling does not change the last hidden state; our pre-training folders declare none.
            rc, out, err = nsparse(args, "embed", "--checkpoint", ckpt, "--device", "cpu", "--pooling", "cls", "--json", "--hidden", *TEXTS)
            if rc != 0:
                all_ok &= report(False, f"{ckpt}: nsparse embed failed: {err.strip().splitlines()[-1:]}", float("nan"), args.tolerance)
            for line in out.splitlines() if rc == 0 else []:
                rec = json.loads(line)
                ids = torch.tensor([rec["input_ids"]])
                ref = model(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state[0]
                ours = torch.tensor(rec["last_hidden_state"], dtype=torch.float32).view_as(ref)
                diff = float((ref - ours).abs().max())
                all_ok &= report(diff <= args.tolerance, f"{name}: last hidden state of {rec['text']!r}", diff, args.tolerance)
        else:
            print(f"SKIPPED {name}: last hidden state: this nsparse has no embed command")

        if os.path.exists(os.path.join(ckpt, "model.safetensors")):
            mlm, info = BertForMaskedLM.from_pretrained(ckpt, output_loading_info=True, attn_implementation="eager")
            if any(k.startswith("cls.") for k in info["missing_keys"]):
                print(f"SKIPPED {name}: MLM logits: the checkpoint has no MLM head (a fine-tuned checkpoint)")
                continue
            mlm.eval()
            for text in TEXTS:
                rc, out, err = nsparse(args, "fill-mask", "--checkpoint", ckpt, "--device", "cpu", "--json", text)
                if rc != 0:
                    all_ok &= report(False, f"{name}: nsparse fill-mask failed: {err.strip().splitlines()[-1:]}", float("nan"), args.tolerance)
                    continue
                rec = json.loads(out)
                ids = torch.tensor([rec["input_ids"]])
                logits = mlm(input_ids=ids, attention_mask=torch.ones_like(ids)).logits[0]
                diff = 0.0
                for m in rec["masks"]:
                    ours = torch.tensor(m["logits"], dtype=torch.float32)
                    diff = max(diff, float((logits[m["position"]] - ours).abs().max()))
                all_ok &= report(diff <= args.tolerance, f"{name}: MLM logits of {text!r}", diff, args.tolerance)
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
