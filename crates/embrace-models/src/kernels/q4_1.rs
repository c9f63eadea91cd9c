//! GGUF `Q4_1` weights multiplied the way llama.cpp multiplies them.
//!
//! A `Q4_1` block holds 32 weights as 4-bit integers `q` with an f16 scale `d` and offset `m`
//! (`w = d·q + m`). llama.cpp never dequantizes them for a product: it quantizes each row of
//! activations to `Q8_1` blocks (32 signed bytes `a` with an f16 scale `d'` and the f16 value
//! `s = d'·Σa`) and sums, per block, `d·d'·Σ q·a + m·s` with integer inner products. candle
//! runs this pair only as scalar code, so this module does it with AVX2 (and a portable
//! fallback), reproducing ggml's arithmetic step by step so that greedy decoding agrees with
//! llama.cpp on the same file:
//! - activations: `amax / 127` as the scale, `127 / amax` as the multiplier, rounding to the
//!   nearest even integer (`_mm256_round_ps`), both f16 fields rounded to nearest even;
//! - per block, eight lanes each hold the integer sum of four neighbouring products and are
//!   accumulated with one fused multiply-add by `d·d'`; the `m·s` terms are summed apart (fused
//!   too, as compilers contract `summs += m * s`), then the eight lanes are added pairwise in
//!   ggml's order (`hsum_float_8`) and the offset sum last.
//!
//! Invariants: a matrix holds `rows × cols / 32` blocks (checked when it is built from the
//! GGUF bytes); inputs are checked against `cols`.

use half::f16;
use rayon::prelude::*;

/// Weights per block.
const QK: usize = 32;
/// Bytes per block in a GGUF file: f16 d, f16 m, 16 bytes of nibbles.
const BLOCK_BYTES: usize = 20;

/// One weight block, its f16 fields widened (exactly) to f32.
#[derive(Debug, Clone, Copy)]
struct BlockQ4_1 {
    d: f32,
    m: f32,
    /// Element j < 16 is the low nibble of byte j; element j >= 16 the high nibble of byte j-16.
    qs: [u8; 16],
}

/// One activation block in `Q8_1`, its f16 fields widened to f32.
#[derive(Debug, Clone, Copy)]
struct BlockQ8_1 {
    d: f32,
    s: f32,
    qs: [i8; QK],
}

/// A `[rows, cols]` weight matrix in `Q4_1` blocks, row-major.
#[derive(Debug, Clone)]
pub(crate) struct Q4_1Matrix {
    rows: usize,
    cols: usize,
    blocks: Vec<BlockQ4_1>,
}

impl Q4_1Matrix {
    /// Reads the raw GGUF block bytes of a `[rows, cols]` matrix; `None` when the sizes do not
    /// fit (cols not a multiple of 32, or a byte count that is not `rows × cols / 32 × 20`).
    pub(crate) fn from_gguf_bytes(bytes: &[u8], rows: usize, cols: usize) -> Option<Self> {
        if !cols.is_multiple_of(QK) || bytes.len() != rows.checked_mul(cols / QK)? * BLOCK_BYTES {
            return None;
        }
        let blocks = bytes
            .chunks_exact(BLOCK_BYTES)
            .map(|b| {
                let half = |i: usize| f16::from_le_bytes([b[i], b[i + 1]]).to_f32();
                let mut qs = [0u8; 16];
                qs.copy_from_slice(&b[4..20]);
                BlockQ4_1 {
                    d: half(0),
                    m: half(2),
                    qs,
                }
            })
            .collect();
        Some(Self { rows, cols, blocks })
    }

    /// Output features.
    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    /// Input features.
    pub(crate) fn cols(&self) -> usize {
        self.cols
    }

    /// `x · Wᵀ` for `n` input rows of `cols` values (`x` is `[n, cols]`, the result
    /// `[n, rows]`). Output features are computed in parallel.
    pub(crate) fn matmul(&self, x: &[f32], n: usize) -> Vec<f32> {
        assert_eq!(
            x.len(),
            n * self.cols,
            "Q4_1 matmul: input is not [n, cols]"
        );
        let per_row = self.cols / QK;
        let activations: Vec<Vec<BlockQ8_1>> =
            x.chunks_exact(self.cols).map(quantize_q8_1).collect();
        let dot = dot_fn();
        let dot4 = dot4_fn();
        // out_t[o][r]: weight rows against every activation row (four weight rows at a time,
        // which share the activation loads), then transposed.
        // A few tasks per thread: enough to balance, few enough that scheduling costs nothing
        // next to the products (a decode step runs hundreds of small products).
        let tasks = rayon::current_num_threads().max(1) * 4;
        let rows_per_task = self.rows.div_ceil(tasks).next_multiple_of(4).max(16);
        let n1 = n.max(1);
        let mut out_t = vec![0f32; self.rows * n];
        let run = |(task, chunk): (usize, &mut [f32])| {
            let first = task * rows_per_task;
            let rows = chunk.len() / n1;
            let row = |o: usize| &self.blocks[o * per_row..(o + 1) * per_row];
            let mut k = 0;
            while k + 4 <= rows {
                let o = first + k;
                let ws = [row(o), row(o + 1), row(o + 2), row(o + 3)];
                for (r, a) in activations.iter().enumerate() {
                    let y = dot4(ws, a);
                    for (i, y) in y.into_iter().enumerate() {
                        chunk[(k + i) * n1 + r] = y;
                    }
                }
                k += 4;
            }
            for k in k..rows {
                for (r, a) in activations.iter().enumerate() {
                    chunk[k * n1 + r] = dot(row(first + k), a);
                }
            }
        };
        if rayon::current_num_threads() > 1 {
            out_t
                .par_chunks_mut(rows_per_task * n1)
                .enumerate()
                .for_each(run);
        } else {
            // One thread: stay on the caller's (handing work to the pool costs more than a
            // decode step's product).
            out_t
                .chunks_mut(rows_per_task * n1)
                .enumerate()
                .for_each(run);
        }
        if n == 1 {
            return out_t;
        }
        let mut out = vec![0f32; n * self.rows];
        for o in 0..self.rows {
            for r in 0..n {
                out[r * self.rows + o] = out_t[o * n + r];
            }
        }
        out
    }
}

/// One row of activations as `Q8_1` blocks (ggml's `quantize_row_q8_1`).
fn quantize_q8_1(x: &[f32]) -> Vec<BlockQ8_1> {
    x.chunks_exact(QK)
        .map(|v| {
            let amax = v.iter().fold(0f32, |m, x| m.max(x.abs()));
            let d = amax / 127.0;
            let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
            let mut qs = [0i8; QK];
            let mut sum = 0i32;
            for (q, &x) in qs.iter_mut().zip(v) {
                let r = (x * id).round_ties_even() as i32;
                sum += r;
                *q = r.clamp(-128, 127) as i8;
            }
            BlockQ8_1 {
                d: f16::from_f32(d).to_f32(),
                s: f16::from_f32(d * sum as f32).to_f32(),
                qs,
            }
        })
        .collect()
}

type DotFn = fn(&[BlockQ4_1], &[BlockQ8_1]) -> f32;
type Dot4Fn = fn([&[BlockQ4_1]; 4], &[BlockQ8_1]) -> [f32; 4];

/// Four rows at once: each result is exactly [`dot_fn`]'s for that row.
fn dot4_fn() -> Dot4Fn {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            return avx2::dot4;
        }
    }
    |ws, a| ws.map(|w| dot_portable(w, a))
}

/// The AVX2 + FMA dot product where the CPU has them, else the portable one (same result).
fn dot_fn() -> DotFn {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            return avx2::dot;
        }
    }
    dot_portable
}

/// The sum of the eight lanes in ggml's `hsum_float_8` order, plus the offset sum.
fn finish(acc: [f32; 8], summs: f32) -> f32 {
    (((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]))) + summs
}

fn dot_portable(w: &[BlockQ4_1], a: &[BlockQ8_1]) -> f32 {
    let mut acc = [0f32; 8];
    let mut summs = 0f32;
    for (wb, ab) in w.iter().zip(a) {
        let d0d1 = wb.d * ab.d;
        summs = wb.m.mul_add(ab.s, summs);
        for (lane, acc) in acc.iter_mut().enumerate() {
            let mut sum = 0i32;
            for j in lane * 4..lane * 4 + 4 {
                let q = if j < 16 {
                    wb.qs[j] & 0x0f
                } else {
                    wb.qs[j - 16] >> 4
                };
                sum += q as i32 * ab.qs[j] as i32;
            }
            *acc = d0d1.mul_add(sum as f32, *acc);
        }
    }
    finish(acc, summs)
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{BlockQ4_1, BlockQ8_1, finish};

    /// Only returned by `dot_fn` after checking AVX2 and FMA.
    pub(super) fn dot(w: &[BlockQ4_1], a: &[BlockQ8_1]) -> f32 {
        // SAFETY: `dot_fn` hands this out only when the CPU supports AVX2 and FMA.
        unsafe { dot_avx2(w, a) }
    }

    /// Only returned by `dot4_fn` after checking AVX2 and FMA.
    pub(super) fn dot4(ws: [&[BlockQ4_1]; 4], a: &[BlockQ8_1]) -> [f32; 4] {
        // SAFETY: `dot4_fn` hands this out only when the CPU supports AVX2 and FMA.
        unsafe { dot4_avx2(ws, a) }
    }

    /// The lanes of one block's integer products, `d·d'` applied: lane k sums elements
    /// 4k..4k+3 (u8 x i8 products summed in pairs without saturation, 15 * 128 * 2 < 2^15,
    /// then in fours).
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn block_lanes(wb: &BlockQ4_1, qy: __m256i, acc: __m256, d1: f32) -> __m256 {
        // SAFETY: `qs` is 16 bytes; the unaligned load reads exactly those.
        let nibbles = unsafe { _mm_loadu_si128(wb.qs.as_ptr().cast()) };
        let qx = _mm256_and_si256(
            _mm256_set1_epi8(0x0f),
            _mm256_set_m128i(_mm_srli_epi16(nibbles, 4), nibbles),
        );
        let pairs = _mm256_maddubs_epi16(qx, qy);
        let lanes = _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_set1_epi16(1), pairs));
        _mm256_fmadd_ps(_mm256_set1_ps(wb.d * d1), lanes, acc)
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn dot4_avx2(ws: [&[BlockQ4_1]; 4], a: &[BlockQ8_1]) -> [f32; 4] {
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut summs = [0f32; 4];
        for (b, ab) in a.iter().enumerate() {
            // SAFETY: `ab.qs` is 32 bytes; the unaligned load reads exactly those.
            let qy = unsafe { _mm256_loadu_si256(ab.qs.as_ptr().cast()) };
            for i in 0..4 {
                let wb = &ws[i][b];
                summs[i] = wb.m.mul_add(ab.s, summs[i]);
                // SAFETY: this function's caller guarantees AVX2 and FMA.
                acc[i] = unsafe { block_lanes(wb, qy, acc[i], ab.d) };
            }
        }
        let mut out = [0f32; 4];
        for i in 0..4 {
            let mut lanes = [0f32; 8];
            // SAFETY: `lanes` holds 8 f32.
            unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), acc[i]) };
            out[i] = finish(lanes, summs[i]);
        }
        out
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn dot_avx2(w: &[BlockQ4_1], a: &[BlockQ8_1]) -> f32 {
        let mut acc = _mm256_setzero_ps();
        let mut summs = 0f32;
        for (wb, ab) in w.iter().zip(a) {
            summs = wb.m.mul_add(ab.s, summs);
            // SAFETY: `ab.qs` is 32 bytes; the unaligned load reads exactly those.
            let qy = unsafe { _mm256_loadu_si256(ab.qs.as_ptr().cast()) };
            // SAFETY: this function's caller guarantees AVX2 and FMA.
            acc = unsafe { block_lanes(wb, qy, acc, ab.d) };
        }
        let mut lanes = [0f32; 8];
        // SAFETY: `lanes` holds 8 f32.
        unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), acc) };
        finish(lanes, summs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matrix(rows: usize, cols: usize, seed: u32) -> (Vec<u8>, Vec<f32>) {
        let mut state = seed;
        let mut next = || {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            state >> 8
        };
        let mut bytes = Vec::new();
        let mut dense = Vec::new();
        for _ in 0..rows * cols / QK {
            let d = f16::from_f32((next() % 1000) as f32 / 50_000.0);
            let m = f16::from_f32(-((next() % 1000) as f32) / 20_000.0);
            bytes.extend(d.to_le_bytes());
            bytes.extend(m.to_le_bytes());
            let qs: Vec<u8> = (0..16).map(|_| (next() & 0xff) as u8).collect();
            let q = |j: usize| {
                if j < 16 { qs[j] & 15 } else { qs[j - 16] >> 4 }
            };
            dense.extend((0..QK).map(|j| d.to_f32() * q(j) as f32 + m.to_f32()));
            bytes.extend(&qs);
        }
        (bytes, dense)
    }

    #[test]
    fn matches_dense_product_within_quantization_error() {
        let (rows, cols, n) = (37, 96, 3);
        let (bytes, dense) = matrix(rows, cols, 7);
        let w = Q4_1Matrix::from_gguf_bytes(&bytes, rows, cols).unwrap();
        let x: Vec<f32> = (0..n * cols)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 25.0)
            .collect();
        let y = w.matmul(&x, n);
        for r in 0..n {
            for o in 0..rows {
                let exact: f32 = (0..cols)
                    .map(|c| x[r * cols + c] * dense[o * cols + c])
                    .sum();
                let got = y[r * rows + o];
                assert!(
                    (got - exact).abs() < 2e-2 * (1.0 + exact.abs()),
                    "{got} vs {exact}"
                );
            }
        }
    }

    #[test]
    fn simd_and_portable_agree_bit_for_bit() {
        let (rows, cols) = (5, 256);
        let (bytes, _) = matrix(rows, cols, 11);
        let w = Q4_1Matrix::from_gguf_bytes(&bytes, rows, cols).unwrap();
        let x: Vec<f32> = (0..cols)
            .map(|i| ((i * 53 % 97) as f32 - 48.0) / 7.0)
            .collect();
        let a = quantize_q8_1(&x);
        for o in 0..rows {
            let row = &w.blocks[o * cols / QK..(o + 1) * cols / QK];
            assert_eq!(dot_fn()(row, &a).to_bits(), dot_portable(row, &a).to_bits());
        }
        let row = |o: usize| &w.blocks[o * cols / QK..(o + 1) * cols / QK];
        let four = dot4_fn()([row(0), row(1), row(2), row(3)], &a);
        for (o, y) in four.into_iter().enumerate() {
            assert_eq!(y.to_bits(), dot_portable(row(o), &a).to_bits());
        }
    }

    #[test]
    fn wrong_sizes_are_refused() {
        assert!(Q4_1Matrix::from_gguf_bytes(&[0; 20], 1, 16).is_none());
        assert!(Q4_1Matrix::from_gguf_bytes(&[0; 39], 1, 64).is_none());
    }
}
