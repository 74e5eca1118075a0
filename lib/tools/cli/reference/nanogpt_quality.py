#!/usr/bin/env python3
"""nanoGPT's baby-GPT CPU recipe in PyTorch, for the quality bar of the pretraining chapter.

The model and training loop of nanoGPT's model.py / train.py with its README's CPU settings
(config/train_shakespeare_char.py plus --block_size=64 --batch_size=12 --n_layer=4 --n_head=4
--n_embd=128 --max_iters=2000 --lr_decay_iters=2000 --dropout=0.0): no biases, exact GELU,
N(0, 0.02) init with residual projections scaled by 1/sqrt(2·n_layer), AdamW (0.9, 0.99) with
weight decay 0.1 on every tensor of 2+ dimensions, lr 1e-3 with 100 warm-up steps and cosine
decay to 1e-4, clip 1.0, character-level Tiny Shakespeare with a 90/10 split.

Why it exists: nanoGPT prints a validation loss averaged over --eval_iters random batches (20 in
its CPU command), one draw of a noisy number. Running this with several seeds and 200 evaluation
batches gives the distribution the course's own runs (npm run train -- --data shakespeare
--max-iters 2000) should be compared with.

Usage (Debian: apt-get install -y python3-torch libopenblas0-pthread):
  python3 lib/tools/cli/reference/nanogpt_quality.py --data data/cache/tinyshakespeare.txt --seed 1337 [--eval-batches 200]
Prints one JSON line: seed, final train/val loss, val loss every 500 steps, seconds.
"""
import argparse, json, math, time

import torch
import torch.nn as nn
import torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument("--data", required=True)
p.add_argument("--seed", type=int, default=1337)
p.add_argument("--eval-batches", type=int, default=200)
p.add_argument("--threads", type=int, default=1)
p.add_argument("--iters", type=int, default=2000)  # the recipe is 2000; fewer only to try the script
a = p.parse_args()
torch.manual_seed(a.seed)
torch.set_num_threads(a.threads)
text = open(a.data, encoding="utf-8").read()
chars = sorted(set(text))
stoi = {c: i for i, c in enumerate(chars)}
data = torch.tensor([stoi[c] for c in text], dtype=torch.long)
n = int(0.9 * len(data))
train, val = data[:n], data[n:]
L, H, C, T, B, ITERS = 4, 4, 128, 64, 12, a.iters


class LayerNorm(nn.Module):  # nanoGPT's LayerNorm with bias=False
    def __init__(self, c):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(c))

    def forward(self, x):
        return F.layer_norm(x, self.weight.shape, self.weight, None, 1e-5)


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln_1, self.ln_2 = LayerNorm(C), LayerNorm(C)
        self.c_attn, self.c_proj = nn.Linear(C, 3 * C, bias=False), nn.Linear(C, C, bias=False)
        self.c_fc, self.mlp_proj = nn.Linear(C, 4 * C, bias=False), nn.Linear(4 * C, C, bias=False)

    def forward(self, x):
        b, t, c = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=2)
        q, k, v = (z.view(b, t, H, C // H).transpose(1, 2) for z in (q, k, v))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(C // H)
        att = att.masked_fill(torch.tril(torch.ones(t, t)) == 0, float("-inf")).softmax(-1)
        x = x + self.c_proj((att @ v).transpose(1, 2).reshape(b, t, c))
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x))))


class GPT(nn.Module):
    def __init__(self, vocab):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(vocab, C), nn.Embedding(T, C)
        self.h = nn.ModuleList(Block() for _ in range(L))
        self.ln_f = LayerNorm(C)
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, 0.0, 0.02)
        for name, w in self.named_parameters():
            if name.endswith("c_proj.weight") or name.endswith("mlp_proj.weight"):
                nn.init.normal_(w, 0.0, 0.02 / math.sqrt(2 * L))

    def forward(self, idx, targets):
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1]))
        for blk in self.h:
            x = blk(x)
        logits = self.ln_f(x) @ self.wte.weight.t()  # tied head
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))


model = GPT(len(chars))
decay = [w for w in model.parameters() if w.dim() >= 2]
no_decay = [w for w in model.parameters() if w.dim() < 2]
opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}], lr=1e-3, betas=(0.9, 0.99))


def batch(d):
    ix = torch.randint(len(d) - T, (B,))
    return torch.stack([d[i:i + T] for i in ix]), torch.stack([d[i + 1:i + 1 + T] for i in ix])


def lr_at(it):
    if it < 100:
        return 1e-3 * it / 100
    ratio = (it - 100) / (ITERS - 100)
    return 1e-4 + 0.5 * (1 + math.cos(math.pi * ratio)) * (1e-3 - 1e-4)


@torch.no_grad()
def estimate(k):
    model.eval()
    out = {name: sum(model(*batch(d)).item() for _ in range(k)) / k for name, d in (("train", train), ("val", val))}
    model.train()
    return out


t0 = time.time()
curve = {}
for it in range(ITERS + 1):
    if it % 500 == 0 or it == ITERS:
        curve[it] = estimate(20 if it < ITERS else a.eval_batches)
    if it == ITERS:
        break
    for g in opt.param_groups:
        g["lr"] = lr_at(it)
    loss = model(*batch(train))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
print(json.dumps({"seed": a.seed, "train": round(curve[ITERS]["train"], 4), "val": round(curve[ITERS]["val"], 4),
                  "eval_batches": a.eval_batches, "val_curve": {k: round(v["val"], 4) for k, v in curve.items()},
                  "seconds": round(time.time() - t0)}))
