/**
 * Fused elementwise and row kernels in WebAssembly SIMD, working in place on the wasm
 * backend's own memory: the AdamW update, LayerNorm (and RMSNorm) forward and backward, GELU
 * and its gradient, SwiGLU and its gradient, rotary embeddings, attention's causal softmax and
 * its gradient, attention's head layout.
 *
 * Why: after the matrix products (./ortMatMul.ts), a nanogpt-cpu training step spent most
 * of its time in small elementwise kernels: LayerNorm is ~9 tfjs kernels forward and ~10
 * backward, GELU ~7 forward and ~9 backward (its sigmoid alone ~0.6 ms for [768, 512]: tfjs's
 * wasm exp is scalar), each a pass over memory plus ~20-50 µs of
 * tfjs bookkeeping, and AdamW ran in a JavaScript loop at ~11 ns per element (V8 does not
 * vectorise). Written as one pass each, four floats per instruction, they cost what their
 * memory traffic costs. The same reason PyTorch and XNNPACK fuse LayerNorm and GELU.
 *
 * How: the functions below are WebAssembly text (WAT), assembled at start-up by wabt
 * (the WebAssembly Binary Toolkit's npm build, `loadSimdKernels`), and instantiated
 * against tfjs-backend-wasm's own WebAssembly.Memory, so they read and write tensors
 * where tfjs keeps them: arguments are byte offsets into that memory. Each function takes
 * n ≥ 4 (elementwise) or rows of a multiple of 4 floats (LayerNorm); callers fall back to
 * tensor ops otherwise. Elementwise loops end with one vector over the LAST four elements
 * (overlapping the previous one when n is not a multiple of 4): recomputing an output
 * from unchanged inputs gives the same value, so no scalar tail is needed.
 * Values equal the tensor-op formulas to float32 rounding (tests/core/kernels/simd.test.ts).
 */
import * as tf from "@tensorflow/tfjs";

const splat = (v: number) => `(v128.const f32x4 ${v} ${v} ${v} ${v})`;

/**
 * WAT that replaces local `x` (four lanes) by eˣ, using scratch locals $ek and $er: eˣ = 2ᵏ·e^r
 * with k = round(x / ln 2) and r = x − k·ln 2 in [−ln2/2, ln2/2]; e^r by Cephes' expf
 * polynomial (relative error ~1e-7), 2ᵏ built in the exponent bits. x is first clamped to
 * [−87.3, 88.7], where float32's eˣ is finite and normal. (WebAssembly has no exp; written
 * inline because a function call per vector measured twice as slow.)
 */
function exp4(x: string): string {
  const horner = [1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1]
    .map((c) => `(local.set ${x} (f32x4.add (f32x4.mul (local.get ${x}) (local.get $er)) ${splat(c)}))`).join("\n      ");
  return `(local.set ${x} (f32x4.pmin (f32x4.pmax (local.get ${x}) ${splat(-87.3)}) ${splat(88.7)}))
      (local.set $ek (f32x4.nearest (f32x4.mul (local.get ${x}) ${splat(1.44269504)})))
      (local.set $er (f32x4.sub (f32x4.sub (local.get ${x}) (f32x4.mul (local.get $ek) ${splat(0.693359375)})) (f32x4.mul (local.get $ek) ${splat(-2.12194440e-4)})))
      (local.set ${x} ${splat(1.9875691500e-4)})
      ${horner}
      (local.set ${x} (f32x4.add (f32x4.add (f32x4.mul (local.get ${x}) (f32x4.mul (local.get $er) (local.get $er))) (local.get $er)) ${splat(1)}))
      (local.set ${x} (f32x4.mul (local.get ${x}) (i32x4.shl (i32x4.add (i32x4.trunc_sat_f32x4_s (local.get $ek)) (v128.const i32x4 127 127 127 127)) (i32.const 23))))`;
}

const WAT = String.raw`
(module
  (memory (import "env" "memory") 0)

  ;; Σ of a vector's four lanes
  (func $hsum (param $v v128) (result f32)
    (f32.add
      (f32.add (f32x4.extract_lane 0 (local.get $v)) (f32x4.extract_lane 1 (local.get $v)))
      (f32.add (f32x4.extract_lane 2 (local.get $v)) (f32x4.extract_lane 3 (local.get $v)))))

  ;; AdamW, per element (bias corrections folded into neg and eps, see ./adamw.ts):
  ;;   m' = b1·m + (1 − b1)·g    v' = b2·v + (1 − b2)·g²    p' = shrink·p + neg·m' / (√v' + eps)
  (func (export "adamw")
    (param $p i32) (param $m i32) (param $v i32) (param $g i32)
    (param $p2 i32) (param $m2 i32) (param $v2 i32) (param $n i32)
    (param $b1 f32) (param $b2 f32) (param $neg f32) (param $eps f32) (param $shrink f32)
    (local $off i32) (local $last i32)
    (local $B1 v128) (local $C1 v128) (local $B2 v128) (local $C2 v128) (local $NEG v128) (local $EPS v128) (local $SH v128)
    (local $gi v128) (local $mi v128) (local $vi v128)
    (local.set $B1 (f32x4.splat (local.get $b1)))
    (local.set $C1 (f32x4.splat (f32.sub (f32.const 1) (local.get $b1))))
    (local.set $B2 (f32x4.splat (local.get $b2)))
    (local.set $C2 (f32x4.splat (f32.sub (f32.const 1) (local.get $b2))))
    (local.set $NEG (f32x4.splat (local.get $neg)))
    (local.set $EPS (f32x4.splat (local.get $eps)))
    (local.set $SH (f32x4.splat (local.get $shrink)))
    (local.set $last (i32.shl (i32.sub (local.get $n) (i32.const 4)) (i32.const 2)))
    (loop $next
      (if (i32.gt_u (local.get $off) (local.get $last)) (then (local.set $off (local.get $last))))
      (local.set $gi (v128.load (i32.add (local.get $g) (local.get $off))))
      (local.set $mi (f32x4.add (f32x4.mul (local.get $B1) (v128.load (i32.add (local.get $m) (local.get $off))))
                                (f32x4.mul (local.get $C1) (local.get $gi))))
      (local.set $vi (f32x4.add (f32x4.mul (local.get $B2) (v128.load (i32.add (local.get $v) (local.get $off))))
                                (f32x4.mul (local.get $C2) (f32x4.mul (local.get $gi) (local.get $gi)))))
      (v128.store (i32.add (local.get $m2) (local.get $off)) (local.get $mi))
      (v128.store (i32.add (local.get $v2) (local.get $off)) (local.get $vi))
      (v128.store (i32.add (local.get $p2) (local.get $off))
        (f32x4.add (f32x4.mul (local.get $SH) (v128.load (i32.add (local.get $p) (local.get $off))))
                   (f32x4.div (f32x4.mul (local.get $NEG) (local.get $mi))
                              (f32x4.add (f32x4.sqrt (local.get $vi)) (local.get $EPS)))))
      (local.set $off (i32.add (local.get $off) (i32.const 16)))
      (br_if $next (i32.lt_u (local.get $off) (i32.add (local.get $last) (i32.const 16))))))

  ;; GPT-2's GELU as x·σ(2u), 2u = x·(c2 + c1·x²) with c1 = 2√(2/π)·0.044715, c2 = 2√(2/π):
  ;; writes y = x·s and s = σ(2u) = 1 / (1 + e^(−2u)) (saved for the gradient).
  (func (export "gelu") (param $x i32) (param $y i32) (param $s i32) (param $n i32) (param $c1 f32) (param $c2 f32)
    (local $off i32) (local $last i32) (local $C1 v128) (local $C2 v128) (local $ONE v128) (local $xi v128) (local $si v128)
    (local $e v128) (local $ek v128) (local $er v128)
    (local.set $C1 (f32x4.splat (local.get $c1)))
    (local.set $C2 (f32x4.splat (local.get $c2)))
    (local.set $ONE (f32x4.splat (f32.const 1)))
    (local.set $last (i32.shl (i32.sub (local.get $n) (i32.const 4)) (i32.const 2)))
    (loop $next
      (if (i32.gt_u (local.get $off) (local.get $last)) (then (local.set $off (local.get $last))))
      (local.set $xi (v128.load (i32.add (local.get $x) (local.get $off))))
      (local.set $e (f32x4.neg (f32x4.mul (local.get $xi) (f32x4.add (local.get $C2) (f32x4.mul (local.get $C1) (f32x4.mul (local.get $xi) (local.get $xi))))))) ;; −2u
      ${exp4("$e")}
      (local.set $si (f32x4.div (local.get $ONE) (f32x4.add (local.get $ONE) (local.get $e))))
      (v128.store (i32.add (local.get $s) (local.get $off)) (local.get $si))
      (v128.store (i32.add (local.get $y) (local.get $off)) (f32x4.mul (local.get $xi) (local.get $si)))
      (local.set $off (i32.add (local.get $off) (i32.const 16)))
      (br_if $next (i32.lt_u (local.get $off) (i32.add (local.get $last) (i32.const 16))))))

  ;; GELU's gradient times the upstream gradient, s = σ(2u) saved by the forward pass:
  ;;   dx = g · (s + x·s·(1 − s)·(c2 + c3·x²)),  c3 = 3·c1
  (func (export "gelu_grad") (param $x i32) (param $s i32) (param $g i32) (param $out i32) (param $n i32) (param $c2 f32) (param $c3 f32)
    (local $off i32) (local $last i32) (local $C2 v128) (local $C3 v128) (local $ONE v128)
    (local $xi v128) (local $si v128)
    (local.set $C2 (f32x4.splat (local.get $c2)))
    (local.set $C3 (f32x4.splat (local.get $c3)))
    (local.set $ONE (f32x4.splat (f32.const 1)))
    (local.set $last (i32.shl (i32.sub (local.get $n) (i32.const 4)) (i32.const 2)))
    (loop $next
      (if (i32.gt_u (local.get $off) (local.get $last)) (then (local.set $off (local.get $last))))
      (local.set $xi (v128.load (i32.add (local.get $x) (local.get $off))))
      (local.set $si (v128.load (i32.add (local.get $s) (local.get $off))))
      (v128.store (i32.add (local.get $out) (local.get $off))
        (f32x4.mul (v128.load (i32.add (local.get $g) (local.get $off)))
          (f32x4.add (local.get $si)
            (f32x4.mul (f32x4.mul (local.get $xi) (f32x4.mul (local.get $si) (f32x4.sub (local.get $ONE) (local.get $si))))
                       (f32x4.add (local.get $C2) (f32x4.mul (local.get $C3) (f32x4.mul (local.get $xi) (local.get $xi))))))))
      (local.set $off (i32.add (local.get $off) (i32.const 16)))
      (br_if $next (i32.lt_u (local.get $off) (i32.add (local.get $last) (i32.const 16))))))

  ;; LayerNorm of rows x [rows, cols] (cols a multiple of 4), per row:
  ;;   mean, var = mean((x − mean)²), rstd = 1/√(var + eps), xhat = (x − mean)·rstd, y = xhat·w + b
  ;; Writes y and xhat [rows, cols] and rstd [rows] (what the backward pass needs).
  ;; center 0 makes it RMSNorm: the mean is taken as 0, so var = mean(x²) (pass b = zeros).
  (func (export "layernorm")
    (param $x i32) (param $w i32) (param $b i32) (param $y i32) (param $xhat i32) (param $rstd i32)
    (param $rows i32) (param $cols i32) (param $eps f32) (param $center f32)
    (local $r i32) (local $j i32) (local $rowBytes i32) (local $base i32)
    (local $acc v128) (local $d v128) (local $mean f32) (local $rs f32) (local $MEAN v128) (local $RS v128)
    (local.set $rowBytes (i32.shl (local.get $cols) (i32.const 2)))
    (block $done (loop $row
      (br_if $done (i32.ge_u (local.get $r) (local.get $rows)))
      (local.set $base (i32.mul (local.get $r) (local.get $rowBytes)))
      ;; mean
      (local.set $acc (v128.const f32x4 0 0 0 0))
      (local.set $j (i32.const 0))
      (loop $sum
        (local.set $acc (f32x4.add (local.get $acc) (v128.load (i32.add (local.get $x) (i32.add (local.get $base) (local.get $j))))))
        (local.set $j (i32.add (local.get $j) (i32.const 16)))
        (br_if $sum (i32.lt_u (local.get $j) (local.get $rowBytes))))
      (local.set $mean (f32.mul (local.get $center) (f32.div (call $hsum (local.get $acc)) (f32.convert_i32_u (local.get $cols)))))
      (local.set $MEAN (f32x4.splat (local.get $mean)))
      ;; variance (biased, as PyTorch) → rstd
      (local.set $acc (v128.const f32x4 0 0 0 0))
      (local.set $j (i32.const 0))
      (loop $var
        (local.set $d (f32x4.sub (v128.load (i32.add (local.get $x) (i32.add (local.get $base) (local.get $j)))) (local.get $MEAN)))
        (local.set $acc (f32x4.add (local.get $acc) (f32x4.mul (local.get $d) (local.get $d))))
        (local.set $j (i32.add (local.get $j) (i32.const 16)))
        (br_if $var (i32.lt_u (local.get $j) (local.get $rowBytes))))
      (local.set $rs (f32.div (f32.const 1)
        (f32.sqrt (f32.add (f32.div (call $hsum (local.get $acc)) (f32.convert_i32_u (local.get $cols))) (local.get $eps)))))
      (f32.store (i32.add (local.get $rstd) (i32.shl (local.get $r) (i32.const 2))) (local.get $rs))
      (local.set $RS (f32x4.splat (local.get $rs)))
      ;; xhat and y
      (local.set $j (i32.const 0))
      (loop $out
        (local.set $d (f32x4.mul (f32x4.sub (v128.load (i32.add (local.get $x) (i32.add (local.get $base) (local.get $j)))) (local.get $MEAN))
                                 (local.get $RS)))
        (v128.store (i32.add (local.get $xhat) (i32.add (local.get $base) (local.get $j))) (local.get $d))
        (v128.store (i32.add (local.get $y) (i32.add (local.get $base) (local.get $j)))
          (f32x4.add (f32x4.mul (local.get $d) (v128.load (i32.add (local.get $w) (local.get $j))))
                     (v128.load (i32.add (local.get $b) (local.get $j)))))
        (local.set $j (i32.add (local.get $j) (i32.const 16)))
        (br_if $out (i32.lt_u (local.get $j) (local.get $rowBytes))))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br $row))))

  ;; LayerNorm's backward pass from the upstream gradient g [rows, cols] and the saved
  ;; xhat, rstd, w: per row, with dxhat = g·w,
  ;;   dx = rstd·(dxhat − mean(dxhat) − xhat·mean(dxhat·xhat))
  ;; and over all rows dw = Σ g·xhat, db = Σ g (column sums, accumulated here).
  ;; center 0: RMSNorm's backward pass (no mean(dxhat) term).
  (func (export "layernorm_grad")
    (param $g i32) (param $xhat i32) (param $rstd i32) (param $w i32)
    (param $dx i32) (param $dw i32) (param $db i32) (param $rows i32) (param $cols i32) (param $center f32)
    (local $r i32) (local $j i32) (local $rowBytes i32) (local $base i32)
    (local $gi v128) (local $xh v128) (local $dxh v128) (local $s1 v128) (local $s2 v128)
    (local $M1 v128) (local $M2 v128) (local $RS v128) (local $n f32)
    (local.set $rowBytes (i32.shl (local.get $cols) (i32.const 2)))
    (local.set $n (f32.convert_i32_u (local.get $cols)))
    (loop $zero
      (v128.store (i32.add (local.get $dw) (local.get $j)) (v128.const f32x4 0 0 0 0))
      (v128.store (i32.add (local.get $db) (local.get $j)) (v128.const f32x4 0 0 0 0))
      (local.set $j (i32.add (local.get $j) (i32.const 16)))
      (br_if $zero (i32.lt_u (local.get $j) (local.get $rowBytes))))
    (block $done (loop $row
      (br_if $done (i32.ge_u (local.get $r) (local.get $rows)))
      (local.set $base (i32.mul (local.get $r) (local.get $rowBytes)))
      (local.set $s1 (v128.const f32x4 0 0 0 0))
      (local.set $s2 (v128.const f32x4 0 0 0 0))
      (local.set $j (i32.const 0))
      (loop $sums
        (local.set $gi (v128.load (i32.add (local.get $g) (i32.add (local.get $base) (local.get $j)))))
        (local.set $xh (v128.load (i32.add (local.get $xhat) (i32.add (local.get $base) (local.get $j)))))
        (local.set $dxh (f32x4.mul (local.get $gi) (v128.load (i32.add (local.get $w) (local.get $j)))))
        (local.set $s1 (f32x4.add (local.get $s1) (local.get $dxh)))
        (local.set $s2 (f32x4.add (local.get $s2) (f32x4.mul (local.get $dxh) (local.get $xh))))
        (v128.store (i32.add (local.get $dw) (local.get $j))
          (f32x4.add (v128.load (i32.add (local.get $dw) (local.get $j))) (f32x4.mul (local.get $gi) (local.get $xh))))
        (v128.store (i32.add (local.get $db) (local.get $j))
          (f32x4.add (v128.load (i32.add (local.get $db) (local.get $j))) (local.get $gi)))
        (local.set $j (i32.add (local.get $j) (i32.const 16)))
        (br_if $sums (i32.lt_u (local.get $j) (local.get $rowBytes))))
      (local.set $M1 (f32x4.splat (f32.mul (local.get $center) (f32.div (call $hsum (local.get $s1)) (local.get $n)))))
      (local.set $M2 (f32x4.splat (f32.div (call $hsum (local.get $s2)) (local.get $n))))
      (local.set $RS (f32x4.splat (f32.load (i32.add (local.get $rstd) (i32.shl (local.get $r) (i32.const 2))))))
      (local.set $j (i32.const 0))
      (loop $out
        (local.set $xh (v128.load (i32.add (local.get $xhat) (i32.add (local.get $base) (local.get $j)))))
        (local.set $dxh (f32x4.mul (v128.load (i32.add (local.get $g) (i32.add (local.get $base) (local.get $j))))
                                   (v128.load (i32.add (local.get $w) (local.get $j)))))
        (v128.store (i32.add (local.get $dx) (i32.add (local.get $base) (local.get $j)))
          (f32x4.mul (local.get $RS)
            (f32x4.sub (f32x4.sub (local.get $dxh) (local.get $M1)) (f32x4.mul (local.get $xh) (local.get $M2)))))
        (local.set $j (i32.add (local.get $j) (i32.const 16)))
        (br_if $out (i32.lt_u (local.get $j) (local.get $rowBytes))))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br $row))))

  ;; SwiGLU's gating of gate a and up b (n elements each): s = σ(a), y = a·s·b.
  ;; Writes y and s (saved for the gradient).
  (func (export "swiglu") (param $a i32) (param $b i32) (param $y i32) (param $s i32) (param $n i32)
    (local $off i32) (local $last i32) (local $ONE v128) (local $ai v128) (local $si v128)
    (local $e v128) (local $ek v128) (local $er v128)
    (local.set $ONE (f32x4.splat (f32.const 1)))
    (local.set $last (i32.shl (i32.sub (local.get $n) (i32.const 4)) (i32.const 2)))
    (loop $next
      (if (i32.gt_u (local.get $off) (local.get $last)) (then (local.set $off (local.get $last))))
      (local.set $ai (v128.load (i32.add (local.get $a) (local.get $off))))
      (local.set $e (f32x4.neg (local.get $ai)))
      ${exp4("$e")}
      (local.set $si (f32x4.div (local.get $ONE) (f32x4.add (local.get $ONE) (local.get $e))))
      (v128.store (i32.add (local.get $s) (local.get $off)) (local.get $si))
      (v128.store (i32.add (local.get $y) (local.get $off))
        (f32x4.mul (f32x4.mul (local.get $ai) (local.get $si)) (v128.load (i32.add (local.get $b) (local.get $off)))))
      (local.set $off (i32.add (local.get $off) (i32.const 16)))
      (br_if $next (i32.lt_u (local.get $off) (i32.add (local.get $last) (i32.const 16))))))

  ;; SwiGLU's gradients from g and the saved a, b, s = σ(a):
  ;;   da = g·b·s·(1 + a·(1 − s)),  db = g·a·s
  (func (export "swiglu_grad") (param $a i32) (param $b i32) (param $s i32) (param $g i32) (param $da i32) (param $db i32) (param $n i32)
    (local $off i32) (local $last i32) (local $ONE v128) (local $ai v128) (local $si v128) (local $gi v128)
    (local.set $ONE (f32x4.splat (f32.const 1)))
    (local.set $last (i32.shl (i32.sub (local.get $n) (i32.const 4)) (i32.const 2)))
    (loop $next
      (if (i32.gt_u (local.get $off) (local.get $last)) (then (local.set $off (local.get $last))))
      (local.set $ai (v128.load (i32.add (local.get $a) (local.get $off))))
      (local.set $si (v128.load (i32.add (local.get $s) (local.get $off))))
      (local.set $gi (v128.load (i32.add (local.get $g) (local.get $off))))
      (v128.store (i32.add (local.get $db) (local.get $off)) (f32x4.mul (local.get $gi) (f32x4.mul (local.get $ai) (local.get $si))))
      (v128.store (i32.add (local.get $da) (local.get $off))
        (f32x4.mul (f32x4.mul (local.get $gi) (v128.load (i32.add (local.get $b) (local.get $off))))
          (f32x4.mul (local.get $si) (f32x4.add (local.get $ONE) (f32x4.mul (local.get $ai) (f32x4.sub (local.get $ONE) (local.get $si)))))))
      (local.set $off (i32.add (local.get $off) (i32.const 16)))
      (br_if $next (i32.lt_u (local.get $off) (i32.add (local.get $last) (i32.const 16))))))

  ;; Rotary embeddings of rows x [rows, d] (d/2 a multiple of 4), rows in blocks of t positions:
  ;; row r is position p = offset + r mod t; with c = cos[p, i], s = sign·sin[p, i] (tables [P, d/2]):
  ;;   y[i] = x[i]·c − x[i + d/2]·s,  y[i + d/2] = x[i]·s + x[i + d/2]·c
  ;; sign −1 turns back: the gradient.
  (func (export "rope") (param $x i32) (param $cos i32) (param $sin i32) (param $y i32)
    (param $rows i32) (param $t i32) (param $d i32) (param $offset i32) (param $sign f32)
    (local $r i32) (local $j i32) (local $halfBytes i32) (local $row i32) (local $tab i32)
    (local $c v128) (local $s v128) (local $x1 v128) (local $x2 v128) (local $SIGN v128)
    (local.set $SIGN (f32x4.splat (local.get $sign)))
    (local.set $halfBytes (i32.shl (local.get $d) (i32.const 1)))
    (block $done (loop $rowLoop
      (br_if $done (i32.ge_u (local.get $r) (local.get $rows)))
      (local.set $row (i32.mul (local.get $r) (i32.shl (local.get $d) (i32.const 2))))
      (local.set $tab (i32.mul (i32.add (local.get $offset) (i32.rem_u (local.get $r) (local.get $t))) (local.get $halfBytes)))
      (local.set $j (i32.const 0))
      (loop $pair
        (local.set $c (v128.load (i32.add (local.get $cos) (i32.add (local.get $tab) (local.get $j)))))
        (local.set $s (f32x4.mul (local.get $SIGN) (v128.load (i32.add (local.get $sin) (i32.add (local.get $tab) (local.get $j))))))
        (local.set $x1 (v128.load (i32.add (local.get $x) (i32.add (local.get $row) (local.get $j)))))
        (local.set $x2 (v128.load (i32.add (local.get $x) (i32.add (local.get $row) (i32.add (local.get $halfBytes) (local.get $j))))))
        (v128.store (i32.add (local.get $y) (i32.add (local.get $row) (local.get $j)))
          (f32x4.sub (f32x4.mul (local.get $x1) (local.get $c)) (f32x4.mul (local.get $x2) (local.get $s))))
        (v128.store (i32.add (local.get $y) (i32.add (local.get $row) (i32.add (local.get $halfBytes) (local.get $j))))
          (f32x4.add (f32x4.mul (local.get $x1) (local.get $s)) (f32x4.mul (local.get $x2) (local.get $c))))
        (local.set $j (i32.add (local.get $j) (i32.const 16)))
        (br_if $pair (i32.lt_u (local.get $j) (local.get $halfBytes))))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br $rowLoop))))

  ;; Causal softmax of attention scores x [rows, S] (S a multiple of 4), rows in blocks of T
  ;; queries: row r is query i = r mod T, which sees keys j ≤ i + S − T. Per row:
  ;;   y_j = e^(scale·x_j − m) / Σ_k e^(scale·x_k − m) for the keys it sees (m their max), 0 for the rest.
  (func (export "causal_softmax") (param $x i32) (param $y i32) (param $rows i32) (param $t i32) (param $s i32) (param $scale f32)
    (local $r i32) (local $j i32) (local $base i32) (local $lim i32) (local $rowBytes i32) (local $end i32)
    (local $SCALE v128) (local $LIM v128) (local $J v128) (local $masked v128) (local $v v128) (local $acc v128)
    (local $e v128) (local $ek v128) (local $er v128) (local $max f32) (local $inv f32)
    (local.set $SCALE (f32x4.splat (local.get $scale)))
    (local.set $rowBytes (i32.shl (local.get $s) (i32.const 2)))
    (block $done (loop $row
      (br_if $done (i32.ge_u (local.get $r) (local.get $rows)))
      (local.set $base (i32.mul (local.get $r) (local.get $rowBytes)))
      (local.set $lim (i32.sub (i32.add (i32.rem_u (local.get $r) (local.get $t)) (local.get $s)) (local.get $t))) ;; last key seen
      (local.set $LIM (i32x4.splat (local.get $lim)))
      ;; only the vectors holding keys 0 … lim are computed (half the row, on average); the rest are 0
      (local.set $end (i32.shl (i32.and (i32.add (local.get $lim) (i32.const 4)) (i32.const -4)) (i32.const 2)))
      ;; max over the keys seen
      (local.set $acc ${splat(-3.4e38)})
      (local.set $J (v128.const i32x4 0 1 2 3))
      (local.set $j (i32.const 0))
      (loop $max
        (local.set $masked (i32x4.gt_s (local.get $J) (local.get $LIM)))
        (local.set $v (f32x4.mul (v128.load (i32.add (local.get $x) (i32.add (local.get $base) (local.get $j)))) (local.get $SCALE)))
        (local.set $acc (f32x4.pmax (local.get $acc) (v128.bitselect ${splat(-3.4e38)} (local.get $v) (local.get $masked))))
        (local.set $J (i32x4.add (local.get $J) (v128.const i32x4 4 4 4 4)))
        (local.set $j (i32.add (local.get $j) (i32.const 16)))
        (br_if $max (i32.lt_u (local.get $j) (local.get $end))))
      (local.set $max (f32.max (f32.max (f32x4.extract_lane 0 (local.get $acc)) (f32x4.extract_lane 1 (local.get $acc)))
                               (f32.max (f32x4.extract_lane 2 (local.get $acc)) (f32x4.extract_lane 3 (local.get $acc)))))
      ;; e^(scale·x − max), 0 where masked; their sum
      (local.set $acc (v128.const f32x4 0 0 0 0))
      (local.set $J (v128.const i32x4 0 1 2 3))
      (local.set $j (i32.const 0))
      (loop $exp
        (local.set $masked (i32x4.gt_s (local.get $J) (local.get $LIM)))
        (local.set $e (f32x4.sub (f32x4.mul (v128.load (i32.add (local.get $x) (i32.add (local.get $base) (local.get $j)))) (local.get $SCALE))
                                 (f32x4.splat (local.get $max))))
        ${exp4("$e")}
        (local.set $e (v128.andnot (local.get $e) (local.get $masked)))
        (v128.store (i32.add (local.get $y) (i32.add (local.get $base) (local.get $j))) (local.get $e))
        (local.set $acc (f32x4.add (local.get $acc) (local.get $e)))
        (local.set $J (i32x4.add (local.get $J) (v128.const i32x4 4 4 4 4)))
        (local.set $j (i32.add (local.get $j) (i32.const 16)))
        (br_if $exp (i32.lt_u (local.get $j) (local.get $end))))
      (block $zeroed (loop $zero
        (br_if $zeroed (i32.ge_u (local.get $j) (local.get $rowBytes)))
        (v128.store (i32.add (local.get $y) (i32.add (local.get $base) (local.get $j))) (v128.const f32x4 0 0 0 0))
        (local.set $j (i32.add (local.get $j) (i32.const 16)))
        (br $zero)))
      (local.set $inv (f32.div (f32.const 1) (call $hsum (local.get $acc))))
      (local.set $j (i32.const 0))
      (loop $norm
        (v128.store (i32.add (local.get $y) (i32.add (local.get $base) (local.get $j)))
          (f32x4.mul (v128.load (i32.add (local.get $y) (i32.add (local.get $base) (local.get $j)))) (f32x4.splat (local.get $inv))))
        (local.set $j (i32.add (local.get $j) (i32.const 16)))
        (br_if $norm (i32.lt_u (local.get $j) (local.get $end))))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br $row))))

  ;; Its gradient from the output y and the upstream dy, per row: dx_j = scale·y_j·(dy_j − Σ_k dy_k·y_k)
  ;; (masked keys have y = 0, so dx = 0 there).
  (func (export "causal_softmax_grad") (param $y i32) (param $dy i32) (param $dx i32) (param $rows i32) (param $s i32) (param $scale f32)
    (local $r i32) (local $j i32) (local $base i32) (local $rowBytes i32) (local $acc v128) (local $DOT v128) (local $SCALE v128) (local $yv v128)
    (local.set $SCALE (f32x4.splat (local.get $scale)))
    (local.set $rowBytes (i32.shl (local.get $s) (i32.const 2)))
    (block $done (loop $row
      (br_if $done (i32.ge_u (local.get $r) (local.get $rows)))
      (local.set $base (i32.mul (local.get $r) (local.get $rowBytes)))
      (local.set $acc (v128.const f32x4 0 0 0 0))
      (local.set $j (i32.const 0))
      (loop $dot
        (local.set $acc (f32x4.add (local.get $acc)
          (f32x4.mul (v128.load (i32.add (local.get $y) (i32.add (local.get $base) (local.get $j))))
                     (v128.load (i32.add (local.get $dy) (i32.add (local.get $base) (local.get $j)))))))
        (local.set $j (i32.add (local.get $j) (i32.const 16)))
        (br_if $dot (i32.lt_u (local.get $j) (local.get $rowBytes))))
      (local.set $DOT (f32x4.splat (call $hsum (local.get $acc))))
      (local.set $j (i32.const 0))
      (loop $out
        (local.set $yv (v128.load (i32.add (local.get $y) (i32.add (local.get $base) (local.get $j)))))
        (v128.store (i32.add (local.get $dx) (i32.add (local.get $base) (local.get $j)))
          (f32x4.mul (f32x4.mul (local.get $SCALE) (local.get $yv))
                     (f32x4.sub (v128.load (i32.add (local.get $dy) (i32.add (local.get $base) (local.get $j)))) (local.get $DOT))))
        (local.set $j (i32.add (local.get $j) (i32.const 16)))
        (br_if $out (i32.lt_u (local.get $j) (local.get $rowBytes))))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br $row))))

  ;; Attention's head layout: rows [B·T, stride] whose columns col … col + H·D are H heads of D
  ;; values, and the same numbers per head [B·H, T, D]. toHeads = 1 copies rows → heads,
  ;; 0 heads → rows. (One pass instead of tfjs's split + reshape + transpose + reshape.)
  (func (export "heads")
    (param $rows i32) (param $heads i32) (param $bt i32) (param $t i32) (param $h i32) (param $d i32)
    (param $stride i32) (param $col i32) (param $toHeads i32)
    (local $r i32) (local $hi i32) (local $rowAt i32) (local $headAt i32) (local $from i32) (local $to i32) (local $j i32) (local $dBytes i32)
    (local.set $dBytes (i32.shl (local.get $d) (i32.const 2)))
    (block $done (loop $row
      (br_if $done (i32.ge_u (local.get $r) (local.get $bt)))
      (local.set $hi (i32.const 0))
      (loop $head
        ;; rows: (r·stride + col + hi·D)·4;  heads: (((r / T)·H + hi)·T + r % T)·D·4
        (local.set $rowAt (i32.add (local.get $rows) (i32.shl
          (i32.add (i32.mul (local.get $r) (local.get $stride)) (i32.add (local.get $col) (i32.mul (local.get $hi) (local.get $d))))
          (i32.const 2))))
        (local.set $headAt (i32.add (local.get $heads) (i32.mul (local.get $dBytes)
          (i32.add (i32.mul (i32.add (i32.mul (i32.div_u (local.get $r) (local.get $t)) (local.get $h)) (local.get $hi)) (local.get $t))
                   (i32.rem_u (local.get $r) (local.get $t))))))
        (local.set $from (select (local.get $rowAt) (local.get $headAt) (local.get $toHeads)))
        (local.set $to (select (local.get $headAt) (local.get $rowAt) (local.get $toHeads)))
        (local.set $j (i32.const 0))
        (loop $copy
          (v128.store (i32.add (local.get $to) (local.get $j)) (v128.load (i32.add (local.get $from) (local.get $j))))
          (local.set $j (i32.add (local.get $j) (i32.const 16)))
          (br_if $copy (i32.lt_u (local.get $j) (local.get $dBytes))))
        (local.set $hi (i32.add (local.get $hi) (i32.const 1)))
        (br_if $head (i32.lt_u (local.get $hi) (local.get $h))))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br $row))))
)
`;

/** The exported functions; pointers are byte offsets into the wasm backend's memory. */
export interface SimdExports {
  adamw(p: number, m: number, v: number, g: number, p2: number, m2: number, v2: number, n: number,
    beta1: number, beta2: number, neg: number, eps: number, shrink: number): void;
  gelu(x: number, y: number, s: number, n: number, c1: number, c2: number): void;
  gelu_grad(x: number, s: number, g: number, out: number, n: number, c2: number, c3: number): void;
  layernorm(x: number, w: number, b: number, y: number, xhat: number, rstd: number, rows: number, cols: number, eps: number, center: number): void;
  layernorm_grad(g: number, xhat: number, rstd: number, w: number, dx: number, dw: number, db: number, rows: number, cols: number, center: number): void;
  swiglu(a: number, b: number, y: number, s: number, n: number): void;
  swiglu_grad(a: number, b: number, s: number, g: number, da: number, db: number, n: number): void;
  rope(x: number, cos: number, sin: number, y: number, rows: number, t: number, d: number, offset: number, sign: number): void;
  causal_softmax(x: number, y: number, rows: number, t: number, s: number, scale: number): void;
  causal_softmax_grad(y: number, dy: number, dx: number, rows: number, s: number, scale: number): void;
  heads(rows: number, heads: number, bt: number, t: number, h: number, d: number, stride: number, col: number, toHeads: number): void;
}

/** The members of tfjs-backend-wasm's `BackendWasm` the SIMD kernels use. */
export interface SimdBackend {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  dataIdMap: { get(dataId: tf.DataId): { memoryOffset: number } };
  wasm: { asm?: { memory?: unknown } };
}

let binary: Uint8Array | null = null;
let loadError: string | null = null;
let enabled = true;
const instances = new WeakMap<object, SimdExports | null>();

/**
 * Assemble the kernels (once per thread; ~50 ms with wabt's start-up). Returns undefined
 * when they can run, else why not, as one line. initBackend awaits it on wasm.
 */
export async function loadSimdKernels(): Promise<string | undefined> {
  if (binary !== null) return undefined;
  if (loadError !== null) return loadError;
  try {
    const wabt = await (require("wabt") as () => Promise<{
      parseWat(name: string, text: string, features?: object): { toBinary(o: object): { buffer: Uint8Array }; destroy(): void };
    }>)();
    const mod = wabt.parseWat("simd.wat", WAT, { simd: true });
    try {
      binary = mod.toBinary({}).buffer;
    } finally {
      mod.destroy();
    }
    new WebAssembly.Module(binary); // validates (SIMD support of this engine)
    return undefined;
  } catch (e) {
    binary = null;
    loadError = `SIMD kernels unavailable (${(e instanceof Error ? e.message : String(e)).split("\n")[0]})`;
    return loadError;
  }
}

/** Turn the SIMD kernels off (tests compare with the tensor-op paths) or back on. */
export function setSimdKernels(on: boolean): void {
  enabled = on;
}

/**
 * The kernels instantiated on this backend's memory, or null: not assembled (yet), turned
 * off, or a memory they cannot share (tfjs's threaded build uses a SharedArrayBuffer).
 */
export function simdFor(backend: unknown): SimdExports | null {
  if (!enabled || binary === null) return null;
  const wasm = (backend as SimdBackend | undefined)?.wasm;
  if (wasm === undefined) return null;
  let inst = instances.get(wasm);
  if (inst === undefined) {
    const memory = wasm.asm?.memory;
    inst = memory instanceof WebAssembly.Memory && memory.buffer instanceof ArrayBuffer
      ? (new WebAssembly.Instance(new WebAssembly.Module(binary), { env: { memory } }).exports as unknown as SimdExports)
      : null;
    instances.set(wasm, inst);
  }
  return inst;
}

/** True when the active backend runs the SIMD kernels. */
export function simdKernelsActive(): boolean {
  return tf.getBackend() === "wasm" && simdFor(tf.backend()) !== null;
}

/** Byte offset of a tensor's data in the wasm memory. */
export function ptr(backend: SimdBackend, t: tf.TensorInfo): number {
  return backend.dataIdMap.get(t.dataId).memoryOffset;
}
