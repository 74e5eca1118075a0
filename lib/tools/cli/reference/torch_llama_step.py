#!/usr/bin/env python3
"""PyTorch reference of the `llama` preset's training step, for `npm run bench -- --torch`.

../shared/bench/torch_reference.py times a GPT-2-style step (LayerNorm, GELU, learned
positions); the course's `llama` preset (lib/gpt/config.ts) is a different model: RMSNorm
(eps 1e-5, weight only), SwiGLU with F = 8*ceil(8C/3/8) hidden units, rotary position
embeddings (half-split convention, base 10000), grouped-query attention, no biases, tied head.
This script is that model with the shared reference's training loop (same batch sampling,
AdamW (0.9, 0.99) with weight decay 0.1 on tensors of 2+ dimensions, cosine learning rate,
clipping at 1.0), the same command line and the same JSON line, so the bench reads both alike.
Attention is written out (scores, causal mask, softmax, weighted sum) as in the shared
reference, not fused, so both references are the same kind of PyTorch code.

Setup on Debian: apt-get install -y python3-torch libopenblas0-pthread
Usage: python3 torch_llama_step.py --data FILE [--layers 4 --heads 4 --kv-heads 2 --channels 128
       --context 64 --batch 12 --steps 60 --warmup 5 --threads 1]
Prints one JSON line: impl, threads, ms_per_step (median), tokens_per_s, params, config.
"""
import argparse, json, math, statistics, time

import torch
import torch.nn as nn
import torch.nn.functional as F


class RMSNorm(nn.Module):
    def __init__(self, c, eps=1e-5):
        super().__init__()
        self.eps, self.weight = eps, nn.Parameter(torch.ones(c))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope_tables(t, d, base=10000.0):
    inv = base ** (-torch.arange(0, d, 2, dtype=torch.float32) / d)  # [D/2]
    ang = torch.arange(t, dtype=torch.float32)[:, None] * inv[None, :]  # [T, D/2]
    return ang.cos(), ang.sin()


def rotate(x, cos, sin):
    # x [B, H, T, D]: first half and second half of each head rotated as pairs (GPT-NeoX, HF Llama)
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


class Block(nn.Module):
    def __init__(self, c, h, g):
        super().__init__()
        self.h, self.g, self.d = h, g, c // h
        self.ln1, self.ln2 = RMSNorm(c), RMSNorm(c)
        self.qkv = nn.Linear(c, c + 2 * g * self.d, bias=False)
        self.proj = nn.Linear(c, c, bias=False)
        f = 8 * math.ceil(8 * c / 3 / 8)
        self.gate, self.up, self.down = nn.Linear(c, f, bias=False), nn.Linear(c, f, bias=False), nn.Linear(f, c, bias=False)

    def forward(self, x, mask, cos, sin):
        b, t, c = x.shape
        q, k, v = self.qkv(self.ln1(x)).split([c, self.g * self.d, self.g * self.d], dim=2)
        q = q.view(b, t, self.h, self.d).transpose(1, 2)
        k = k.view(b, t, self.g, self.d).transpose(1, 2)
        v = v.view(b, t, self.g, self.d).transpose(1, 2)
        q, k = rotate(q, cos[:t], sin[:t]), rotate(k, cos[:t], sin[:t])
        k = k.repeat_interleave(self.h // self.g, dim=1)  # each key/value head serves h/g query heads
        v = v.repeat_interleave(self.h // self.g, dim=1)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(self.d)
        att = att.masked_fill(mask[:t, :t] == 0, float("-inf")).softmax(-1)
        x = x + self.proj((att @ v).transpose(1, 2).reshape(b, t, c))
        m = self.ln2(x)
        return x + self.down(F.silu(self.gate(m)) * self.up(m))


class Llama(nn.Module):
    def __init__(self, vocab, ctx, layers, heads, kv_heads, c):
        super().__init__()
        self.wte = nn.Embedding(vocab, c)
        self.blocks = nn.ModuleList(Block(c, heads, kv_heads) for _ in range(layers))
        self.lnf = RMSNorm(c)
        self.register_buffer("mask", torch.tril(torch.ones(ctx, ctx)))
        cos, sin = rope_tables(ctx, c // heads)
        self.register_buffer("cos", cos)
        self.register_buffer("sin", sin)

    def forward(self, idx, targets):
        x = self.wte(idx)
        for blk in self.blocks:
            x = blk(x, self.mask, self.cos, self.sin)
        logits = self.lnf(x) @ self.wte.weight.t()
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--kv-heads", type=int, default=2)
    p.add_argument("--channels", type=int, default=128)
    p.add_argument("--context", type=int, default=64)
    p.add_argument("--batch", type=int, default=12)
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    if a.heads % a.kv_heads != 0 or a.channels % a.heads != 0 or (a.channels // a.heads) % 2 != 0:
        p.error("--heads must be a multiple of --kv-heads, and --channels / --heads an even integer")
    torch.manual_seed(0)
    torch.set_num_threads(a.threads)
    text = open(a.data, encoding="utf-8").read()
    chars = sorted(set(text))
    stoi = {ch: i for i, ch in enumerate(chars)}
    data = torch.tensor([stoi[ch] for ch in text], dtype=torch.long)
    model = Llama(len(chars), a.context, a.layers, a.heads, a.kv_heads, a.channels)
    decay = [q for q in model.parameters() if q.dim() >= 2]
    no_decay = [q for q in model.parameters() if q.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": no_decay, "weight_decay": 0.0}], lr=1e-3, betas=(0.9, 0.99))
    times = []
    for step in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        ix = torch.randint(len(data) - a.context - 1, (a.batch,))
        x = torch.stack([data[i:i + a.context] for i in ix])
        y = torch.stack([data[i + 1:i + 1 + a.context] for i in ix])
        lr = 1e-4 + 0.5 * (1e-3 - 1e-4) * (1 + math.cos(math.pi * step / (a.warmup + a.steps)))
        for g in opt.param_groups:
            g["lr"] = lr
        loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        loss.item()
        if step >= a.warmup:
            times.append((time.perf_counter() - t0) * 1000)
    print(json.dumps({"impl": "pytorch " + torch.__version__, "threads": a.threads,
                      "ms_per_step": round(statistics.median(times), 2),
                      "tokens_per_s": round(a.batch * a.context / statistics.median(times) * 1000),
                      "params": sum(q.numel() for q in model.parameters()),
                      "config": vars(a)}))


if __name__ == "__main__":
    main()
