//! llama.cpp's CPU arithmetic for the operations between a GGUF model's quantized products:
//! RMSNorm, rotary embeddings, SwiGLU, and the attention's f16 products and softmax.
//!
//! Greedy decoding of a quantized model agrees with llama.cpp only when every activation has
//! the same bits: each product quantizes its input rows to 8-bit blocks, so a difference in the
//! last bit of one value can move a block's rounding by a whole step. The quantized products
//! themselves are in [`super::quant`]; this module reproduces the rest of ggml's CPU backend as
//! it is compiled for x86-64 with AVX2, FMA and F16C (`GGML_NATIVE` on such a CPU):
//! - `rms_norm`: the sum of squares accumulated in f64, one value after another; `(x·s)·w`;
//! - rotary tables: the angle of pair `i` is `p · θ^i` computed by repeated f32 multiplication
//!   (`ggml_rope_cache_init`), its cosine and sine from the C library's `cosf` / `sinf`;
//! - `expf`: ggml's 8-lane polynomial `ggml_v_expf` (used by softmax and SiLU), lane by lane;
//! - softmax: `exp(x - max)` with that polynomial, the sum taken in 8-value chunks of the whole
//!   key row (`hsum_float_8` order inside a chunk, an f64 total over chunks), `p · (1 / sum)`;
//! - f16 dot products in the two orders llama.cpp uses: a prompt (two or more tokens) goes
//!   through llamafile's `tinyBLAS` (eight lanes, one fused multiply-add per lane and step, then
//!   `hsum`), a decode step through `ggml_vec_dot_f16` (four 8-lane accumulators over steps of
//!   32 values, reduced pairwise, leftovers added in f64).
//!
//! Lanes are assigned by the absolute index of a value in ggml's row (a key position counts from
//! the start of the cache), so positions that ggml masks to zero can be skipped: a product with
//! a zero weight leaves an accumulator unchanged.

use super::math::simd_dispatch;

/// ggml's `hsum_float_8` (and llamafile's `hsum` of a 256-bit vector): the high half added to
/// the low half, then `(a0 + a2) + (a1 + a3)`.
#[inline(always)]
pub(crate) fn hsum8(a: &[f32; 8]) -> f32 {
    let s = [a[0] + a[4], a[1] + a[5], a[2] + a[6], a[3] + a[7]];
    (s[0] + s[2]) + (s[1] + s[3])
}

/// The reduction of `ggml_vec_dot_f16`'s four accumulators (`GGML_F32x8_REDUCE`): `(x0 + x2) +
/// (x1 + x3)` lane by lane, then low half plus high half and two horizontal adds.
#[inline(always)]
fn reduce_f32x8x4(acc: &[[f32; 8]; 4]) -> f32 {
    let mut x = [0f32; 8];
    for (l, v) in x.iter_mut().enumerate() {
        *v = (acc[0][l] + acc[2][l]) + (acc[1][l] + acc[3][l]);
    }
    let t = [x[0] + x[4], x[1] + x[5], x[2] + x[6], x[3] + x[7]];
    (t[0] + t[1]) + (t[2] + t[3])
}

/// `e^x` as one lane of ggml's `ggml_v_expf` (AVX2 + FMA) computes it.
#[inline(always)]
pub(crate) fn expf(x: f32) -> f32 {
    let c = |bits: u32| f32::from_bits(bits);
    let r = c(0x4b40_0000); // 0x1.8p23
    let z = x.mul_add(c(0x3fb8_aa3b), r); // x · log2(e) + r
    let n = z - r;
    // b = x - n·ln2 (hi) - n·ln2 (lo), as two fused negative multiply-adds.
    let b = (-n).mul_add(c(0x35bf_be8e), (-n).mul_add(c(0x3f31_7200), x));
    let e = z.to_bits() << 23;
    let k = f32::from_bits(e.wrapping_add(1f32.to_bits()));
    let big = n.abs() > 126.0;
    let u = b * b;
    let j = c(0x3c07_2010)
        .mul_add(b, c(0x3d2b_9f17))
        .mul_add(u, c(0x3e2a_af33).mul_add(b, c(0x3eff_fedb)));
    let j = j.mul_add(u, c(0x3f7f_fff6) * b);
    if !big {
        return j.mul_add(k, k);
    }
    let g: u32 = if n <= 0.0 { 0x8200_0000 } else { 0 };
    let s1 = f32::from_bits(g.wrapping_add(0x7f00_0000));
    let s2 = f32::from_bits(e.wrapping_sub(g));
    if n.abs() > 192.0 {
        s1 * s1
    } else {
        s2.mul_add(j, s2) * s1
    }
}

/// ggml's `ggml_v_silu`: `x / (1 + e^-x)` with [`expf`].
#[inline(always)]
fn silu(x: f32) -> f32 {
    x / (1.0 + expf(0.0 - x))
}

simd_dispatch! {
    /// `gate = silu(gate) · up` (ggml's `ggml_vec_swiglu_f32`).
    fn swiglu(gate: &mut [f32], up: &[f32]) {
        assert_eq!(gate.len(), up.len(), "gate and up lengths differ");
        for (g, &u) in gate.iter_mut().zip(up) {
            *g = silu(*g) * u;
        }
    }
}

simd_dispatch! {
    /// RMSNorm of rows of `weight.len()` values in place (ggml's `rms_norm` followed by `mul`).
    fn rms_norm(rows: &mut [f32], weight: &[f32], eps: f32) {
        let width = weight.len();
        assert!(width > 0 && rows.len().is_multiple_of(width), "rows are not a multiple of the width");
        for row in rows.chunks_exact_mut(width) {
            let sum = row.iter().fold(0f64, |s, &x| s + (x * x) as f64);
            let mean = (sum / width as f64) as f32;
            let scale = 1.0 / (mean + eps).sqrt();
            for (x, &w) in row.iter_mut().zip(weight) {
                *x = (*x * scale) * w;
            }
        }
    }
}

/// Rotary `cos` / `sin` tables `[tokens][dims / 2]` for positions `start..start + tokens`, as
/// `ggml_rope_cache_init` computes them for base `base` (no frequency scaling).
pub(crate) fn rope_tables(
    base: f32,
    dims: usize,
    start: usize,
    tokens: usize,
) -> (Vec<f32>, Vec<f32>) {
    let half = dims / 2;
    let theta_scale = base.powf(-2.0 / dims as f32);
    let mut cos = Vec::with_capacity(tokens * half);
    let mut sin = Vec::with_capacity(tokens * half);
    for p in start..start + tokens {
        let mut theta = p as f32;
        for _ in 0..half {
            cos.push(theta.cos());
            sin.push(theta.sin());
            theta *= theta_scale;
        }
    }
    (cos, sin)
}

simd_dispatch! {
    /// Rotates `x` (`[heads][tokens][dims]`) in place with tables from [`rope_tables`]; pair `i`
    /// is `(2i, 2i + 1)` when `interleaved` (llama.cpp's normal mode), else `(i, i + dims/2)`
    /// (NeoX mode). The products are fused as GCC contracts ggml's `x0·c - x1·s` and
    /// `x0·s + x1·c`: `fma(x0, c, -(x1·s))` and `fma(x0, s, x1·c)` (checked against llama.cpp's
    /// own rotated tensors).
    fn rope(x: &mut [f32], tokens: usize, dims: usize, cos: &[f32], sin: &[f32], interleaved: bool) {
        let half = dims / 2;
        assert!(dims > 0 && x.len().is_multiple_of(tokens * dims), "x is not [heads, tokens, dims]");
        assert!(cos.len() == tokens * half && sin.len() == cos.len(), "tables are not [tokens, dims / 2]");
        for (r, row) in x.chunks_exact_mut(dims).enumerate() {
            let t = r % tokens;
            let (c, s) = (&cos[t * half..(t + 1) * half], &sin[t * half..(t + 1) * half]);
            for i in 0..half {
                let (a, b) = if interleaved { (2 * i, 2 * i + 1) } else { (i, i + half) };
                let (x0, x1) = (row[a], row[b]);
                row[a] = x0.mul_add(c[i], -(x1 * s[i]));
                row[b] = x0.mul_add(s[i], x1 * c[i]);
            }
        }
    }
}

/// An f16 dot product (operands already rounded to f16, kept in f32) in llamafile `tinyBLAS`'s
/// order: lane `i % 8`, one fused multiply-add per step, then [`hsum8`]. `a.len()` is a
/// multiple of 8.
#[inline(always)]
pub(crate) fn dot_tinyblas(a: &[f32], b: &[f32]) -> f32 {
    let [dot] = dot_tinyblas_rows([a], b);
    dot
}

/// [`dot_tinyblas`] of `K` rows `a[k]` with one `b`: `K` independent accumulation chains in one
/// loop (one chain is bound by the latency of its fused multiply-adds), each the same
/// operations in the same order as the one-row product.
#[inline(always)]
pub(crate) fn dot_tinyblas_rows<const K: usize>(a: [&[f32]; K], b: &[f32]) -> [f32; K] {
    let mut acc = [[0f32; 8]; K];
    let steps = a.iter().fold(b.len(), |n, a| n.min(a.len())) / 8;
    for step in 0..steps {
        let y = &b[8 * step..8 * step + 8];
        for (acc, a) in acc.iter_mut().zip(&a) {
            let x = &a[8 * step..8 * step + 8];
            for l in 0..8 {
                acc[l] = x[l].mul_add(y[l], acc[l]);
            }
        }
    }
    acc.map(|acc| hsum8(&acc))
}

/// An f16 dot product in `ggml_vec_dot_f16`'s order (AVX2): value `i` goes to accumulator
/// `(i % 32) / 8`, lane `i % 8`; the leftovers past the last multiple of 32 are added in f64.
#[inline(always)]
pub(crate) fn dot_vec_f16(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [[0f32; 8]; 4];
    let full = a.len() / 32 * 32;
    for (x, y) in a[..full].chunks_exact(32).zip(b[..full].chunks_exact(32)) {
        for j in 0..4 {
            for l in 0..8 {
                acc[j][l] = x[8 * j + l].mul_add(y[8 * j + l], acc[j][l]);
            }
        }
    }
    let mut sum = reduce_f32x8x4(&acc) as f64;
    for (x, y) in a[full..].iter().zip(&b[full..]) {
        sum += (x * y) as f64;
    }
    sum as f32
}

/// Softmax weights of the visible keys `first..first + e.len()` (absolute positions in the key
/// row) in place: `scores` holds the scaled scores, and leaves `p = e^(s - max) · (1 / sum)`
/// with ggml's `ggml_vec_soft_max_f32` sum (8-value chunks of the whole row, zeros for masked
/// positions).
#[inline(always)]
pub(crate) fn softmax(scores: &mut [f32], first: usize) {
    let max = scores.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x));
    scores.iter_mut().for_each(|s| *s = expf(*s - max));
    let mut sum = 0f64;
    let mut p = first;
    let end = first + scores.len();
    while p < end {
        let chunk_end = (p / 8 + 1) * 8;
        let mut lanes = [0f32; 8];
        for q in p..chunk_end.min(end) {
            lanes[q % 8] = scores[q - first];
        }
        sum += hsum8(&lanes) as f64;
        p = chunk_end;
    }
    let inv = (1.0 / sum) as f32;
    scores.iter_mut().for_each(|s| *s *= inv);
}

/// `out = Σ_p w[p] · v[p]` over positions `first..first + w.len()` (`values` holds their rows of
/// `out.len()` values) in the order of llama.cpp's product of the weights with the transposed
/// value cache: tinyBLAS's eight lanes (`p % 8`) for a prompt, `ggml_vec_dot_f16`'s 4 x 8 for a
/// decode step. `acc` is scratch space.
#[inline(always)]
pub(crate) fn weighted_values(
    out: &mut [f32],
    w: &[f32],
    values: &[f32],
    first: usize,
    prompt: bool,
    acc: &mut Vec<f32>,
) {
    let dim = out.len();
    let slots = if prompt { 8 } else { 32 };
    acc.clear();
    acc.resize(slots * dim, 0.0);
    for (i, (&p, v)) in w.iter().zip(values.chunks_exact(dim)).enumerate() {
        let slot = (first + i) % slots;
        let a = &mut acc[slot * dim..(slot + 1) * dim];
        for (a, &v) in a.iter_mut().zip(v) {
            *a = v.mul_add(p, *a);
        }
    }
    for (d, o) in out.iter_mut().enumerate() {
        let lane = |s: usize| acc[s * dim + d];
        *o = if prompt {
            hsum8(&std::array::from_fn(lane))
        } else {
            reduce_f32x8x4(&std::array::from_fn(|j| {
                std::array::from_fn(|l| lane(8 * j + l))
            }))
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expf_is_close_to_exp_and_zero_at_minus_infinity() {
        for i in -2000..=800 {
            let x = i as f32 * 0.1;
            let (got, want) = (expf(x) as f64, (x as f64).exp());
            assert!(
                (got - want).abs() <= 2e-7 * want + 1e-44,
                "{x}: {got} vs {want}"
            );
        }
        assert_eq!(expf(f32::NEG_INFINITY), 0.0);
        assert_eq!(expf(0.0), 1.0);
    }

    #[test]
    fn dot_orders_sum_the_same_values() {
        let a: Vec<f32> = (0..72)
            .map(|i| ((i * 37 % 17) as f32 - 8.0) * 0.25)
            .collect();
        let b: Vec<f32> = (0..72)
            .map(|i| ((i * 11 % 13) as f32 - 6.0) * 0.5)
            .collect();
        let exact: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert_eq!(dot_tinyblas(&a, &b), exact);
        assert_eq!(dot_vec_f16(&a, &b), exact);
        // Four rows at once: each row's own bits (values whose sums do round).
        let rows: Vec<Vec<f32>> = (0..4)
            .map(|k| {
                (0..72)
                    .map(|i| ((i * 7 + k * 13) as f32).sin() * 1.7)
                    .collect()
            })
            .collect();
        let four = dot_tinyblas_rows([&rows[0], &rows[1], &rows[2], &rows[3]], &b);
        for (row, got) in rows.iter().zip(four) {
            assert_eq!(got.to_bits(), dot_tinyblas(row, &b).to_bits());
        }
    }

    #[test]
    fn softmax_weights_sum_to_one() {
        let mut s = vec![0.5, -1.0, 2.0, 0.0, 1.5, -3.0, 0.25, 1.0, 0.75, -0.5, 3.0];
        softmax(&mut s, 5);
        let total: f32 = s.iter().sum();
        assert!((total - 1.0).abs() < 1e-6);
        assert!(s[10] > s[2] && s[2] > s[4]);
    }

    #[test]
    fn weighted_values_in_both_orders() {
        let w = [0.25f32, 0.5, 0.125, 0.125];
        let values: Vec<f32> = (0..12).map(|i| i as f32).collect();
        let mut acc = Vec::new();
        for prompt in [true, false] {
            let mut out = [0f32; 3];
            weighted_values(&mut out, &w, &values, 29, prompt, &mut acc);
            for (d, o) in out.iter().enumerate() {
                let want: f32 = (0..4).map(|p| w[p] * values[p * 3 + d]).sum();
                assert_eq!(*o, want);
            }
        }
    }
}
