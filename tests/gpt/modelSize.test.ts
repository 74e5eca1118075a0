import assert from "node:assert/strict";
import {
  breakdownTable,
  configTable,
  formatBytes,
  formatCount,
  formatDuration,
  GPT2_SMALL,
  GPT2_XL,
  GPT3_175B,
  HARDWARE,
  CHINCHILLA_TOKENS_PER_PARAMETER,
  LLAMA3_70B,
  LLAMA3_8B,
  LLAMA32_1B,
  LLAMA32_3B,
  MIXTRAL_8X7B,
  memoryBytes,
  MODEL_CONFIGS,
  ModelConfig,
  parameterCount,
  sizeTable,
  trainingFlops,
  trainingMemoryBytes,
  trainingSeconds,
  kvCacheBytesPerToken,
  modelConfigFromGPT,
} from "../../lib/gpt/modelSize";
import { GPT_PRESETS, gptConfig, gptParameterCount } from "../../lib/gpt/gpt";

describe("modelSize", () => {
  describe("the KV cache and the course's own GPTs", () => {
    it("KV cache per token: 2 · layers · key/value heads · head size · bytes (GQA stores only the key/value heads)", () => {
      assert.equal(kvCacheBytesPerToken(GPT2_SMALL, "bf16"), 2 * 12 * 12 * 64 * 2); // 36,864
      assert.equal(kvCacheBytesPerToken(LLAMA3_8B, "bf16"), 2 * 32 * 8 * 128 * 2); // 131,072 = 128 KiB
      assert.equal(kvCacheBytesPerToken({ ...LLAMA3_8B, nKVHeads: 32 }, "bf16"), 4 * kvCacheBytesPerToken(LLAMA3_8B, "bf16"), "multi-head: 4x");
      assert.equal(sizeTable([LLAMA3_8B])[0]["KV cache, full context (bf16)"], formatBytes(131072 * 8192));
    });

    it("modelConfigFromGPT: the tables count a course GPT exactly as gptParameterCount does, chapter 10's options included", () => {
      const configs = [gptConfig("nanogpt-cpu"), GPT_PRESETS.llama, gptConfig("tiny", { tiedHead: false, nKvHead: 1, norm: "rmsnorm" }), gptConfig("tiny", { mlp: "swiglu", bias: false })];
      for (const c of configs) assert.equal(parameterCount(modelConfigFromGPT(c, "x")).total, gptParameterCount(c), JSON.stringify(c));
    });
  });

  describe("parameterCount: published totals", () => {
    it("GPT-2 small = 124,439,808 (Hugging Face gpt2, tied head)", () => {
      assert.equal(parameterCount(GPT2_SMALL).total, 124_439_808);
    });
    it("GPT-2 XL = 1,557,611,200 (Hugging Face gpt2-xl)", () => {
      assert.equal(parameterCount(GPT2_XL).total, 1_557_611_200);
    });
    it("GPT-3 175B is within 0.5% of 175 billion", () => {
      const n = parameterCount(GPT3_175B).total;
      assert.equal(n, 174_604_259_328);
      assert.ok(Math.abs(n / 175e9 - 1) < 0.005);
    });
    it("Llama 3 8B = 8,030,261,248 and 70B = 70,553,706,496 (Meta's safetensors)", () => {
      assert.equal(parameterCount(LLAMA3_8B).total, 8_030_261_248);
      assert.equal(parameterCount(LLAMA3_70B).total, 70_553_706_496);
    });
    it("Llama 3.2 1B = 1,235,814,400 and 3B = 3,212,749,824 (tied heads; Meta's safetensors)", () => {
      assert.equal(parameterCount(LLAMA32_1B).total, 1_235_814_400);
      assert.equal(parameterCount(LLAMA32_3B).total, 3_212_749_824);
      assert.equal(parameterCount(LLAMA32_1B).head, 0);
    });
    it("Mixtral 8x7B = 46,702,792,704 in memory, 12,879,925,248 active per token (two experts of eight)", () => {
      const p = parameterCount(MIXTRAL_8X7B);
      assert.equal(p.total, 46_702_792_704);
      assert.equal(p.active, 12_879_925_248);
      assert.equal(p.router, 32 * 4096 * 8);
      assert.equal(p.mlp, 32 * 8 * 3 * 4096 * 14336);
      assert.equal(p.total - p.active, 32 * 6 * 3 * 4096 * 14336, "the six idle experts of each layer");
    });
  });

  describe("parameterCount: the breakdown", () => {
    it("GPT-2 small part by part, by hand", () => {
      assert.deepEqual(parameterCount(GPT2_SMALL), {
        tokenEmbedding: 50257 * 768, // 38,597,376
        positionEmbedding: 1024 * 768, // 786,432
        attention: 12 * (768 * 2304 + 2304 + 768 * 768 + 768), // QKV + output, with biases
        mlp: 12 * (768 * 3072 + 3072 + 3072 * 768 + 768),
        norms: 25 * 2 * 768, // 2 per layer + final, weight and bias
        head: 0, // tied
        router: 0, // dense
        total: 124_439_808,
        active: 124_439_808,
      });
    });

    it("Llama 3 8B: GQA shrinks K and V to 8 heads of 128; SwiGLU has 3 matrices; RMSNorm weight only", () => {
      const p = parameterCount(LLAMA3_8B);
      assert.equal(p.attention, 32 * (4096 * 4096 * 2 + 2 * 4096 * 1024));
      assert.equal(p.mlp, 32 * 3 * 4096 * 14336);
      assert.equal(p.norms, 65 * 4096);
      assert.equal(p.head, 128256 * 4096);
      assert.equal(p.positionEmbedding, 0);
    });

    it("the parts sum to the total for every model", () => {
      for (const c of MODEL_CONFIGS) {
        const p = parameterCount(c);
        assert.equal(p.tokenEmbedding + p.positionEmbedding + p.attention + p.mlp + p.norms + p.head + p.router, p.total, c.name);
        if (!c.experts) assert.equal(p.active, p.total, c.name);
      }
    });

    it("a tiny Llama-style and a tiny GPT-2-style config, counted by hand", () => {
      const llamaish: ModelConfig = {
        ...LLAMA3_8B,
        name: "tiny llama",
        vocabSize: 10,
        contextLength: 4,
        nLayers: 1,
        nHeads: 2,
        nKVHeads: 1,
        dModel: 4,
        dFF: 8,
      };
      // emb 10·4 = 40; Q 4·4 + K 4·2 + V 4·2 + O 4·4 = 48; MLP 3·4·8 = 96; norms 3·4 = 12; head 40.
      assert.deepEqual(parameterCount(llamaish), {
        tokenEmbedding: 40,
        positionEmbedding: 0,
        attention: 48,
        mlp: 96,
        norms: 12,
        head: 40,
        router: 0,
        total: 236,
        active: 236,
      });
      // The same as a mixture of 3 experts, 2 per token: MLPs 3·96, router 4·3 = 12; one idle expert of 96.
      assert.deepEqual(parameterCount({ ...llamaish, experts: { total: 3, active: 2 } }), {
        tokenEmbedding: 40,
        positionEmbedding: 0,
        attention: 48,
        mlp: 288,
        norms: 12,
        head: 40,
        router: 12,
        total: 440,
        active: 344,
      });
      const gptish: ModelConfig = { ...GPT2_SMALL, name: "tiny gpt", vocabSize: 10, contextLength: 4, nLayers: 1, nHeads: 2, nKVHeads: 2, dModel: 4, dFF: 6 };
      // emb 40; pos 16; attn 4·(16 + 4) = 80; MLP 4·6 + 6 + 6·4 + 4 = 58; norms 3·(4 + 4) = 24; tied head 0.
      assert.deepEqual(parameterCount(gptish), {
        tokenEmbedding: 40,
        positionEmbedding: 16,
        attention: 80,
        mlp: 58,
        norms: 24,
        head: 0,
        router: 0,
        total: 218,
        active: 218,
      });
    });

    it("rejects inconsistent configs with a clear message", () => {
      assert.throws(() => parameterCount({ ...GPT2_SMALL, nHeads: 7, nKVHeads: 7 }), /dModel 768 is not divisible by nHeads 7/);
      assert.throws(() => parameterCount({ ...LLAMA3_8B, nKVHeads: 5 }), /nHeads 32 is not a multiple of nKVHeads 5/);
      assert.throws(() => parameterCount({ ...GPT2_SMALL, nLayers: 0 }), /nLayers must be a positive integer, got 0/);
      assert.throws(() => parameterCount({ ...MIXTRAL_8X7B, experts: { total: 8, active: 9 } }), /experts must be whole numbers with 1 ≤ active ≤ total, got 9 of 8/);
    });
  });

  describe("memory", () => {
    it("weights: 4, 2, 2, 1 and ½ bytes per parameter", () => {
      const n = 124_439_808;
      assert.equal(memoryBytes(n, "fp32"), 497_759_232);
      assert.equal(memoryBytes(n, "fp16"), 248_879_616);
      assert.equal(memoryBytes(n, "bf16"), 248_879_616);
      assert.equal(memoryBytes(n, "int8"), 124_439_808);
      assert.equal(memoryBytes(n, "int4"), 62_219_904);
      assert.equal(memoryBytes(3, "int4"), 2); // half a byte still takes a byte
      assert.throws(() => memoryBytes(1, "fp8" as never), /unknown dtype "fp8"/);
    });

    it("training with Adam: 16 bytes per parameter, split differently in fp32 and mixed precision", () => {
      assert.deepEqual(trainingMemoryBytes(1000, "fp32"), { weights: 4000, gradients: 4000, optimizer: 8000, total: 16000 });
      assert.deepEqual(trainingMemoryBytes(1000, "mixed"), { weights: 2000, gradients: 2000, optimizer: 12000, total: 16000 });
      // Llama 3 8B needs 128.5 GB just for weights, gradients and Adam states: more than one 80 GB GPU.
      assert.equal(trainingMemoryBytes(8_030_261_248).total, 128_484_179_968);
    });
  });

  describe("compute and time", () => {
    it("6·N·D: GPT-3 on 300B tokens ≈ 3.14e23 FLOP, the figure of Brown et al. 2020 (Table D.1)", () => {
      assert.equal(trainingFlops(1e9, 1e12), 6e21);
      const gpt3 = trainingFlops(parameterCount(GPT3_175B).total, 300e9);
      assert.ok(Math.abs(gpt3 / 3.14e23 - 1) < 0.002, String(gpt3));
    });

    it("time = FLOP / (throughput × devices × utilization)", () => {
      assert.equal(trainingSeconds(1e12, HARDWARE.laptop), 50); // 1e12 / 20e9
      assert.equal(trainingSeconds(312e12 * 1024 * 10, HARDWARE.cluster), 10);
      assert.equal(trainingSeconds(312e12, HARDWARE.a100, 0.5), 2);
      assert.throws(() => trainingSeconds(1, HARDWARE.a100, 0), /utilization/);
    });
  });

  describe("formatting and the table", () => {
    it("formats counts, bytes and durations", () => {
      assert.equal(formatCount(124_439_808), "124M");
      assert.equal(formatCount(8_030_261_248), "8.03B");
      assert.equal(formatCount(15e12), "15.0T");
      assert.equal(formatCount(512), "512");
      assert.equal(formatBytes(497_759_232), "498 MB");
      assert.equal(formatBytes(16e9), "16.0 GB");
      assert.equal(formatDuration(42), "42.0 s");
      assert.equal(formatDuration(90), "1.50 min");
      assert.equal(formatDuration(3 * 86400), "3.00 days");
      assert.equal(formatDuration(2e6 * 365.25 * 86400), "2.00 million years");
    });

    it("one row per model, computed from the configs", () => {
      const rows = sizeTable();
      assert.deepEqual(
        rows.map((r) => r.Model),
        ["GPT-2 small", "Llama 3.2 1B", "GPT-2 XL", "Llama 3.2 3B", "Llama 3 8B", "Mixtral 8x7B (MoE)", "Llama 3 70B", "GPT-3 175B"],
      );
      const gpt2 = rows[0];
      assert.equal(gpt2["Tokens per parameter"], "80"); // 10B / 124.4M
      const byName = (n: string) => rows.find((r) => r.Model === n)!;
      assert.equal(byName("GPT-3 175B")["Tokens per parameter"], "2"); // 300B / 174.6B: far below Chinchilla's 20
      assert.equal(byName("Llama 3 8B")["Tokens per parameter"], "1868"); // 15T / 8.03B: far above it
      assert.equal(CHINCHILLA_TOKENS_PER_PARAMETER, 20);
      const moe = byName("Mixtral 8x7B (MoE)");
      assert.equal(moe.Parameters, "46.7B (12.9B active)");
      assert.equal(moe["fp16 weights"], "93.4 GB", "every expert is held in memory");
      assert.equal(moe["Training tokens"], "n/a");
      assert.equal(sizeTable([{ ...MIXTRAL_8X7B, trainingTokens: 1e12 }])[0]["Compute 6ND (FLOP)"], "7.7e22", "compute counts the active parameters: 6 × 12.88B × 1T");
      assert.equal(configTable([MIXTRAL_8X7B])[0].MLP, "SwiGLU (3 matrices), 8 experts (2 per token)");
      assert.equal(gpt2.Parameters, "124M");
      assert.equal(gpt2["fp32 weights"], "498 MB");
      assert.equal(gpt2["Compute 6ND (FLOP)"], "7.5e18"); // 6 × 124.4M × 10B
      assert.equal(gpt2["This laptop"], "11.8 years"); // 7.47e18 / 20e9 s
      const gpt3 = byName("GPT-3 175B");
      assert.equal(gpt3["1,024 A100s"], "11.4 days"); // 3.14e23 / (1024 × 312e12) s
      assert.deepEqual(breakdownTable([GPT2_SMALL])[0], {
        Model: "GPT-2 small",
        Embeddings: "39.4M (31.6%)", // 38,597,376 + 786,432 = 39,383,808
        Attention: "28.3M (22.8%)",
        MLP: "56.7M (45.5%)",
        Norms: "38.4K (0.0%)",
        "Output head": "0",
        Total: "124,439,808",
      });
      assert.equal(configTable([LLAMA3_8B])[0].Heads, "32 (KV 8)");
      const noTokens = sizeTable([{ ...GPT2_SMALL, trainingTokens: null }])[0];
      assert.equal(noTokens["Training tokens"], "n/a");
      assert.equal(noTokens["This laptop"], "n/a");
    });
  });
});
