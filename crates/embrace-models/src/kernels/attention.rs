//! Multi-head self-attention over packed (unpadded) sequences.
//!
//! The input is the output of the fused Q/K/V projection for all tokens of a batch, packed
//! without padding: row `t` holds `[q | k | v]` of token `t`, each `hidden` wide with the heads
//! side by side. A sequence is a contiguous range of rows, and tokens only attend within their
//! own sequence, so padded batches cost nothing extra and need no mask.

use std::ops::Range;

use rayon::prelude::*;

use super::math::softmax_rows;
use super::matmul::{View, matmul};
use super::rowdot::{Strides, dot_products};

/// Sequences up to this length use the register-tiled dot-product kernel instead of `gemm`,
/// whose fixed cost per call dominates for small matrices.
const SMALL_SEQUENCE: usize = 96;

/// The geometry of an attention call.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AttentionShape {
    /// Width of the hidden state (`heads * head_dim`).
    pub hidden: usize,
    /// Number of heads.
    pub heads: usize,
    /// A token sees only tokens at most this far away (ModernBERT's local layers); `None` = all.
    pub half_window: Option<usize>,
}

/// Computes the attention context `[tokens, hidden]` from packed `qkv` `[tokens, 3 * hidden]`.
///
/// Panics if `qkv` does not have `3 * hidden` columns for every row a sequence names.
pub(crate) fn attention(
    qkv: &[f32],
    sequences: &[Range<usize>],
    shape: AttentionShape,
) -> Vec<f32> {
    let AttentionShape {
        hidden,
        heads,
        half_window,
    } = shape;
    assert!(
        heads > 0 && hidden % heads == 0,
        "hidden is not a multiple of heads"
    );
    let tokens = qkv.len() / (3 * hidden);
    assert_eq!(
        qkv.len(),
        tokens * 3 * hidden,
        "qkv is not [tokens, 3 * hidden]"
    );
    assert!(
        sequences
            .iter()
            .all(|r| r.start <= r.end && r.end <= tokens),
        "a sequence reaches past the packed tokens"
    );
    let d = hidden / heads;
    let scale = 1.0 / (d as f32).sqrt();
    let row = 3 * hidden;

    let units: Vec<(usize, usize)> = sequences
        .iter()
        .enumerate()
        .filter(|(_, r)| !r.is_empty())
        .flat_map(|(s, _)| (0..heads).map(move |h| (s, h)))
        .collect();
    let one = |&(s, h): &(usize, usize)| -> Vec<f32> {
        let range = &sequences[s];
        let len = range.len();
        let base = range.start * row + h * d;
        let q = &qkv[base..];
        let k = &qkv[base + hidden..];
        let v = &qkv[base + 2 * hidden..];
        let strided = View {
            rows: len,
            cols: d,
            row_stride: row,
            col_stride: 1,
        };
        let k_t = View {
            rows: d,
            cols: len,
            row_stride: 1,
            col_stride: row,
        };
        let mut scores = vec![0.0f32; len * len];
        let small = len <= SMALL_SEQUENCE;
        if small {
            let st = Strides {
                x: row,
                w: row,
                inp: d,
            };
            dot_products(&mut scores, q, len, k, len, st);
        } else {
            matmul(
                &mut scores,
                View::row_major(len, len),
                q,
                strided,
                k,
                k_t,
                1.0,
                false,
                false,
            );
        }
        if let Some(w) = half_window {
            for (i, r) in scores.chunks_exact_mut(len).enumerate() {
                for (j, x) in r.iter_mut().enumerate() {
                    if i.abs_diff(j) > w {
                        *x = f32::NEG_INFINITY;
                    }
                }
            }
        }
        softmax_rows(&mut scores, len, scale);
        let mut ctx = vec![0.0f32; len * d];
        if small {
            // ctx = P · V as dot products of P's rows with V's columns (V transposed first).
            let mut v_t = vec![0.0f32; d * len];
            for j in 0..len {
                for c in 0..d {
                    v_t[c * len + j] = v[j * row + c];
                }
            }
            let st = Strides {
                x: len,
                w: len,
                inp: len,
            };
            dot_products(&mut ctx, &scores, len, &v_t, d, st);
        } else {
            matmul(
                &mut ctx,
                View::row_major(len, d),
                &scores,
                View::row_major(len, len),
                v,
                strided,
                1.0,
                false,
                false,
            );
        }
        ctx
    };
    let parts: Vec<Vec<f32>> = if units.len() > 1 && rayon::current_num_threads() > 1 {
        units.par_iter().map(one).collect()
    } else {
        units.iter().map(one).collect()
    };
    let mut out = vec![0.0f32; tokens * hidden];
    for (&(s, h), part) in units.iter().zip(&parts) {
        let range = &sequences[s];
        for (i, chunk) in part.chunks_exact(d).enumerate() {
            let at = (range.start + i) * hidden + h * d;
            out[at..at + d].copy_from_slice(chunk);
        }
    }
    out
}

/// Rotates the query and key parts of packed `qkv` in place by rotary position embeddings
/// (the `rotate_half` convention of transformers), token `t` at position `positions[t]`.
pub(crate) fn apply_rope(
    qkv: &mut [f32],
    hidden: usize,
    heads: usize,
    positions: &[u32],
    theta: f64,
) {
    let d = hidden / heads;
    let half = d / 2;
    assert_eq!(
        qkv.len(),
        positions.len() * 3 * hidden,
        "qkv is not [tokens, 3 * hidden]"
    );
    let inv_freq: Vec<f64> = (0..half)
        .map(|i| 1.0 / theta.powf((2 * i) as f64 / d as f64))
        .collect();
    for (row, &pos) in qkv.chunks_exact_mut(3 * hidden).zip(positions) {
        // transformers computes the angles in f32: position * inv_freq, then cos / sin.
        let angles: Vec<(f32, f32)> = inv_freq
            .iter()
            .map(|&f| {
                let a = pos as f32 * f as f32;
                (a.cos(), a.sin())
            })
            .collect();
        for part in row[..2 * hidden].chunks_exact_mut(d) {
            let (x1, x2) = part.split_at_mut(half);
            for ((a, b), &(cos, sin)) in x1.iter_mut().zip(x2.iter_mut()).zip(&angles) {
                let (u, v) = (*a, *b);
                *a = u * cos - v * sin;
                *b = v * cos + u * sin;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(qkv: &[f32], seq: Range<usize>, hidden: usize, heads: usize) -> Vec<f32> {
        let d = hidden / heads;
        let len = seq.len();
        let at = |t: usize, part: usize, h: usize, i: usize| {
            qkv[t * 3 * hidden + part * hidden + h * d + i]
        };
        let mut out = vec![0.0; len * hidden];
        for h in 0..heads {
            for i in 0..len {
                let scores: Vec<f64> = (0..len)
                    .map(|j| {
                        (0..d)
                            .map(|x| {
                                at(seq.start + i, 0, h, x) as f64
                                    * at(seq.start + j, 1, h, x) as f64
                            })
                            .sum::<f64>()
                            / (d as f64).sqrt()
                    })
                    .collect();
                let max = scores.iter().cloned().fold(f64::MIN, f64::max);
                let exps: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
                let sum: f64 = exps.iter().sum();
                for x in 0..d {
                    out[i * hidden + h * d + x] = (0..len)
                        .map(|j| exps[j] / sum * at(seq.start + j, 2, h, x) as f64)
                        .sum::<f64>() as f32;
                }
            }
        }
        out
    }

    #[test]
    fn packed_attention_equals_per_sequence_naive() {
        let (hidden, heads) = (8, 2);
        let tokens = 7 + 120;
        let qkv: Vec<f32> = (0..tokens * 3 * hidden)
            .map(|i| ((i * 7919) % 97) as f32 / 50.0 - 1.0)
            .collect();
        let seqs = [0..3, 3..3, 3..7, 7..127];
        let out = attention(
            &qkv,
            &seqs,
            AttentionShape {
                hidden,
                heads,
                half_window: None,
            },
        );
        for seq in [0..3, 3..7, 7..127] {
            let want = naive(&qkv, seq.clone(), hidden, heads);
            let got = &out[seq.start * hidden..seq.end * hidden];
            for (a, b) in got.iter().zip(&want) {
                assert!((a - b).abs() < 1e-5, "{a} vs {b}");
            }
        }
    }
}
