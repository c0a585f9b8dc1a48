#!/usr/bin/env python3
"""PyTorch reference for `nsparse bench train` -- a MEASURING STICK, NOT PART OF THE PRODUCT.

NativeSparsity itself contains no Python. This script exists only to time an established
framework's CPU training step on the same BERT configuration and the same MLM step as
`nsparse bench train` (experiments/Bench/TrainBench.cs), side by side on the same machine
(scripts/bench-vs-pytorch.sh runs both, interleaved). Nothing in the engine imports or calls it.

What it times, per step (each part separately, like TrainBench):
  forward   : zero_grad(set_to_none) + embeddings + encoder + MLM head on the masked positions
              only (gather rows, dense + GELU + LayerNorm, decoder tied to the word embeddings
              with its own bias, mean cross-entropy) + loss.item()
  backward  : loss.backward()
  optimizer : clip_grad_norm_(1.0) + AdamW(lr 1e-4, betas 0.9/0.999, eps 1e-8, wd 0.01)
Known differences from ours are listed in docs/PERFORMANCE.md ("Side by side with PyTorch").

On a GPU (scripts/gpu-check.sh): --device cuda; each part's time then ends with a CUDA synchronise.

Run with Debian's python3-torch (apt-get install -y python3-torch) under /usr/bin/python3:
  /usr/bin/python3 scripts/reference/bert_step_torch.py --preset tiny --threads 2
Prints one JSON object on stdout.
"""
import argparse
import json
import math
import os
import statistics
import sys
import time

PRESETS = {"tiny": (2, 128), "mini": (4, 256), "small": (4, 512),
           "medium": (8, 512), "base": (12, 768), "large": (24, 1024)}


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="tiny", choices=sorted(PRESETS))
    ap.add_argument("--threads", type=int, default=0, help="intra-op threads (0: all cores)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--vocab-size", type=int, default=8192)
    ap.add_argument("--steps", type=int, default=5, help="timed steps (median reported)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--openblas-threads", type=int, default=0,
                    help="OpenBLAS threads (0: same as --threads)")
    ap.add_argument("--foreach", choices=["on", "off"], default="on",
                    help="AdamW multi-tensor (foreach) implementation")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (the GPU check's same-machine peer ratio)")
    return ap.parse_args()


args = parse_args()
threads = args.threads if args.threads > 0 else (os.cpu_count() or 1)
# Debian's torch calls OpenBLAS (pthread build) for GEMMs; torch.set_num_threads only sets the
# OpenMP pool, so OpenBLAS's own thread count must be fixed before the library loads.
os.environ["OPENBLAS_NUM_THREADS"] = str(args.openblas_threads if args.openblas_threads > 0 else threads)
os.environ["OMP_NUM_THREADS"] = str(threads)

import torch  # noqa: E402  (after the environment is set)
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

torch.set_num_threads(threads)
torch.set_num_interop_threads(1)


class Config:
    def __init__(self, preset, vocab, max_pos):
        layers, hidden = PRESETS[preset]
        self.vocab = vocab
        self.hidden = hidden
        self.layers = layers
        self.heads = hidden // 64
        self.inter = 4 * hidden
        self.max_pos = max_pos
        self.type_vocab = 2
        self.hidden_dropout = 0.1
        self.attn_dropout = 0.1
        self.eps = 1e-12


class EncoderLayer(nn.Module):
    """Post-LN BERT layer; Q, K, V fused into one [3C, C] projection, as in our engine."""

    def __init__(self, cfg):
        super().__init__()
        c = cfg.hidden
        self.h, self.d = cfg.heads, c // cfg.heads
        self.qkv = nn.Linear(c, 3 * c)
        self.attn_out = nn.Linear(c, c)
        self.ln1 = nn.LayerNorm(c, eps=cfg.eps)
        self.inter = nn.Linear(c, cfg.inter)
        self.out = nn.Linear(cfg.inter, c)
        self.ln2 = nn.LayerNorm(c, eps=cfg.eps)
        self.p_h, self.p_a = cfg.hidden_dropout, cfg.attn_dropout

    def forward(self, x, key_mask, b, t):
        c = x.shape[-1]
        qkv = self.qkv(x).view(b, t, 3, self.h, self.d).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]                       # [b, h, t, d] views
        scores = torch.matmul(q, k.transpose(-1, -2))
        scores = scores * (1.0 / math.sqrt(self.d)) + key_mask  # key_mask [b, 1, 1, t]
        probs = F.dropout(torch.softmax(scores, dim=-1), self.p_a, True)
        ctx = torch.matmul(probs, v).permute(0, 2, 1, 3).reshape(b * t, c)
        a = F.dropout(self.attn_out(ctx), self.p_h, True)
        h1 = self.ln1(x + a)
        f = F.dropout(self.out(F.gelu(self.inter(h1))), self.p_h, True)
        return self.ln2(h1 + f)


class BertMlm(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        c = cfg.hidden
        self.word = nn.Embedding(cfg.vocab, c)
        self.pos = nn.Embedding(cfg.max_pos, c)
        self.token_type = nn.Embedding(cfg.type_vocab, c)
        self.ln = nn.LayerNorm(c, eps=cfg.eps)
        self.layers = nn.ModuleList(EncoderLayer(cfg) for _ in range(cfg.layers))
        self.pooler = nn.Linear(c, c)        # held like ours; unused by the MLM loss
        self.transform = nn.Linear(c, c)
        self.transform_ln = nn.LayerNorm(c, eps=cfg.eps)
        self.decoder_bias = nn.Parameter(torch.zeros(cfg.vocab))
        self.p_h = cfg.hidden_dropout
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, 0.0, 0.02)
            if isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward(self, ids, types, positions, key_mask, mlm_rows, mlm_labels):
        b, t = ids.shape
        x = self.word(ids) + self.pos(positions) + self.token_type(types)
        x = F.dropout(self.ln(x), self.p_h, True).view(b * t, -1)
        for layer in self.layers:
            x = layer(x, key_mask, b, t)
        h = x.index_select(0, mlm_rows)                      # masked positions only
        h = self.transform_ln(F.gelu(self.transform(h)))
        logits = F.linear(h, self.word.weight, self.decoder_bias)  # decoder tied to word embeddings
        return F.cross_entropy(logits, mlm_labels)


def make_batch(cfg, b, t, gen):
    ids = torch.randint(5, cfg.vocab, (b, t), generator=gen)
    labels_all = ids.clone()
    selected = torch.rand(b, t, generator=gen) < 0.15
    choice = torch.rand(b, t, generator=gen)
    ids[selected & (choice < 0.8)] = 3                    # [MASK]
    rnd = selected & (choice >= 0.8) & (choice < 0.9)
    ids[rnd] = torch.randint(5, cfg.vocab, (int(rnd.sum()),), generator=gen)
    rows = selected.view(-1).nonzero().view(-1)
    labels = labels_all.view(-1).index_select(0, rows)
    types = torch.zeros(b, t, dtype=torch.long)
    positions = torch.arange(t).unsqueeze(0).expand(b, t).contiguous()
    key_mask = torch.zeros(b, 1, 1, t)                    # additive: all tokens kept, as in our bench
    return ids, types, positions, key_mask, rows, labels


def main():
    cfg = Config(args.preset, args.vocab_size, max(512, args.seq_len))
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    model = BertMlm(cfg).to(device).train()
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=1e-4, betas=(0.9, 0.999), eps=1e-8, foreach=args.foreach == "on")
    gen = torch.Generator().manual_seed(args.seed)
    batch = tuple(x.to(device) for x in make_batch(cfg, args.batch_size, args.seq_len, gen))
    params = list(model.parameters())

    fwd, bwd, optim, losses = [], [], [], []
    for s in range(args.warmup + args.steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = model(*batch)
        lv = loss.item()
        t1 = time.perf_counter()
        loss.backward()
        sync()
        t2 = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sync()
        t3 = time.perf_counter()
        if s < args.warmup:
            continue
        fwd.append((t1 - t0) * 1e3); bwd.append((t2 - t1) * 1e3); optim.append((t3 - t2) * 1e3)
        losses.append(lv)

    med = statistics.median
    step = med(fwd) + med(bwd) + med(optim)
    tokens = args.batch_size * args.seq_len
    print(json.dumps({
        "framework": "pytorch", "torch": torch.__version__, "device": str(device), "preset": args.preset,
        "layers": cfg.layers, "hidden": cfg.hidden, "heads": cfg.heads, "intermediate": cfg.inter,
        "vocab": cfg.vocab, "batch": args.batch_size, "seq": args.seq_len, "threads": torch.get_num_threads(),
        "openblas_threads_env": os.environ["OPENBLAS_NUM_THREADS"], "adamw_foreach": args.foreach == "on",
        "masked_positions": int(batch[4].numel()), "steps": args.steps, "warmup": args.warmup,
        "forward_ms": round(med(fwd), 2), "backward_ms": round(med(bwd), 2), "optimizer_ms": round(med(optim), 2),
        "step_ms": round(step, 2), "tokens_per_s": round(tokens / (step / 1e3), 1),
        "step_ms_all": [round(a + b + c, 1) for a, b, c in zip(fwd, bwd, optim)],
        "loss_first": round(losses[0], 4), "loss_last": round(losses[-1], 4),
    }))


if __name__ == "__main__":
    sys.exit(main())
