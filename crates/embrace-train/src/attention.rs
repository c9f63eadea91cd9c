//! BERT self-attention as one autograd operation: `softmax(Q·Kᵀ·scale + mask)`, dropout on the
//! probabilities, times `V`, forward and backward.
//!
//! Built from candle operations, the same computation took a dozen tensors per layer
//! (head splits and transposes, the scaled and masked scores, softmax, the dropout copy) and
//! as many again in the backward pass, each a pass over memory, and its small per-head products
//! ran on rayon threads beside candle's pool. Here every pass runs on the pool, one batch
//! element per chunk, and the per-head products read `Q`, `K` and `V` in place, straight from
//! the `[batch, seq, hidden]` outputs of the projections.
//!
//! The probabilities are not stored: the backward pass computes them again (the products that
//! make them are a small part of a layer's work) and redraws the dropout mask from its seed.

use std::borrow::Cow;

use candle_core::Tensor;
use embrace_models::cpu::{MatrixView, par_chunks_mut, par_fill, product, softmax_rows};

use crate::autograd::{Dropout, with_values};

/// The attention of one layer over a padded batch.
pub(crate) struct SelfAttention {
    /// Batch size.
    pub batch: usize,
    /// Padded sequence length.
    pub seq: usize,
    /// Number of heads.
    pub heads: usize,
    /// `1/√head_dim`.
    pub scale: f32,
    /// `[batch, seq]`: whether each key is a real token (padding is never attended to).
    pub keys: std::sync::Arc<Vec<bool>>,
    /// Dropout on the probabilities (training), or none.
    pub dropout: Option<Dropout>,
}

/// A `[seq, head_dim]` head of a `[seq, hidden]` matrix (row stride `hidden`).
fn head(seq: usize, head_dim: usize, hidden: usize) -> MatrixView {
    MatrixView {
        rows: seq,
        cols: head_dim,
        row_stride: hidden,
        col_stride: 1,
    }
}

/// The transpose of [`head`].
fn head_t(seq: usize, head_dim: usize, hidden: usize) -> MatrixView {
    MatrixView {
        rows: head_dim,
        cols: seq,
        row_stride: 1,
        col_stride: hidden,
    }
}

/// A dense `n x n` matrix, or its transpose with `transposed`.
fn square(n: usize, transposed: bool) -> MatrixView {
    if transposed {
        MatrixView::transposed(n, n)
    } else {
        MatrixView::row_major(n, n)
    }
}

impl SelfAttention {
    /// The hidden width of `len` values of `[batch, seq, hidden]`, checked against the heads
    /// and the mask.
    fn hidden_of(&self, len: usize) -> candle_core::Result<usize> {
        let tokens = self.batch * self.seq;
        if tokens == 0 || !len.is_multiple_of(tokens) || !(len / tokens).is_multiple_of(self.heads)
        {
            candle_core::bail!(
                "self-attention: {len} values for {} x {} tokens and {} heads",
                self.batch,
                self.seq,
                self.heads
            );
        }
        if self.keys.len() != tokens {
            candle_core::bail!(
                "self-attention: {} mask entries for {tokens} tokens",
                self.keys.len()
            );
        }
        Ok(len / tokens)
    }

    /// `a[b][:, head] · x[b][:, head]ᵀ` for every batch element and head, `[batch, heads, seq,
    /// seq]`, from `[batch, seq, hidden]` inputs; `then(b, m)` finishes each product `m` while
    /// it is in cache.
    fn head_products(
        &self,
        a: &[f32],
        x: &[f32],
        hidden: usize,
        then: impl Fn(usize, &mut [f32]) + Sync,
    ) -> Vec<f32> {
        let (s, h) = (self.seq, self.heads);
        let d = hidden / h;
        par_fill(self.batch * h * s * s, h * s * s, |start, units| {
            let b = start / (h * s * s);
            for (hi, m) in units.chunks_exact_mut(s * s).enumerate() {
                let base = b * s * hidden + hi * d;
                product(
                    m,
                    MatrixView::row_major(s, s),
                    &a[base..],
                    head(s, d, hidden),
                    &x[base..],
                    head_t(s, d, hidden),
                );
                then(b, m);
            }
        })
    }

    /// The attention probabilities `[batch, heads, seq, seq]` (before dropout).
    fn probabilities(&self, q: &[f32], k: &[f32], hidden: usize) -> Vec<f32> {
        let s = self.seq;
        self.head_products(q, k, hidden, |b, scores| {
            let keys = &self.keys[b * s..(b + 1) * s];
            for row in scores.chunks_exact_mut(s) {
                for (x, &real) in row.iter_mut().zip(keys) {
                    if !real {
                        *x = f32::NEG_INFINITY;
                    }
                }
            }
            softmax_rows(scores, s, self.scale);
        })
    }

    /// `out[b][:, head] = op(m[b, head]) · x[b][:, head]` for every batch element and head:
    /// `m` holds `[batch, heads, seq, seq]` matrices (`op` transposes them with `transposed`),
    /// `x` and `out` are `[batch, seq, hidden]` with the heads side by side.
    fn per_head(&self, m: &[f32], transposed: bool, x: &[f32], hidden: usize) -> Vec<f32> {
        let (s, h) = (self.seq, self.heads);
        let d = hidden / h;
        par_fill(self.batch * s * hidden, s * hidden, |start, out| {
            let b = start / (s * hidden);
            for hi in 0..h {
                let unit = (b * h + hi) * s * s;
                product(
                    &mut out[hi * d..],
                    head(s, d, hidden),
                    &m[unit..unit + s * s],
                    square(s, transposed),
                    &x[b * s * hidden + hi * d..],
                    head(s, d, hidden),
                );
            }
        })
    }

    /// `values` through the dropout mask (unchanged without dropout).
    fn dropped<'a>(&self, values: &'a [f32]) -> Cow<'a, [f32]> {
        match &self.dropout {
            Some(d) => Cow::Owned(d.apply(values)),
            None => Cow::Borrowed(values),
        }
    }
}

impl candle_core::CustomOp3 for SelfAttention {
    fn name(&self) -> &'static str {
        "self-attention"
    }

    fn cpu_fwd(
        &self,
        s1: &candle_core::CpuStorage,
        l1: &candle_core::Layout,
        s2: &candle_core::CpuStorage,
        l2: &candle_core::Layout,
        s3: &candle_core::CpuStorage,
        l3: &candle_core::Layout,
    ) -> candle_core::Result<(candle_core::CpuStorage, candle_core::Shape)> {
        let q = crate::autograd::contiguous_f32(s1, l1, self.name())?;
        let k = crate::autograd::contiguous_f32(s2, l2, self.name())?;
        let v = crate::autograd::contiguous_f32(s3, l3, self.name())?;
        if k.len() != q.len() || v.len() != q.len() {
            candle_core::bail!("self-attention: q, k and v differ in shape");
        }
        let hidden = self.hidden_of(q.len())?;
        let probs = self.probabilities(q, k, hidden);
        let context = self.per_head(&self.dropped(&probs), false, v, hidden);
        Ok((candle_core::CpuStorage::F32(context), l1.shape().clone()))
    }

    fn bwd(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let name = self.name();
        let (dq, dk, dv) = with_values(q, name, |q| {
            with_values(k, name, |k| {
                with_values(v, name, |v| {
                    with_values(grad_res, name, |dc| self.backward(q, k, v, dc))?
                })?
            })?
        })??;
        let (shape, dev) = (q.shape(), q.device());
        Ok((
            Some(Tensor::from_vec(dq, shape, dev)?),
            Some(Tensor::from_vec(dk, shape, dev)?),
            Some(Tensor::from_vec(dv, shape, dev)?),
        ))
    }
}

impl SelfAttention {
    /// The gradients of `q`, `k` and `v` from the context's gradient `dc`.
    #[allow(clippy::type_complexity)]
    fn backward(
        &self,
        q: &[f32],
        k: &[f32],
        v: &[f32],
        dc: &[f32],
    ) -> candle_core::Result<(Vec<f32>, Vec<f32>, Vec<f32>)> {
        if [k.len(), v.len(), dc.len()].iter().any(|&n| n != q.len()) {
            candle_core::bail!("self-attention: q, k, v and the gradient differ in shape");
        }
        let hidden = self.hidden_of(q.len())?;
        let (s, h) = (self.seq, self.heads);
        let probs = self.probabilities(q, k, hidden);
        // V's gradient: (dropped P)ᵀ · dC per head.
        let dv = self.per_head(&self.dropped(&probs), true, dc, hidden);
        // The probabilities' gradient: dC · Vᵀ per head, through the dropout mask.
        let grad_dropped = self.head_products(dc, v, hidden, |_, _| {});
        let mut grad = match &self.dropout {
            Some(d) => d.apply(&grad_dropped),
            None => grad_dropped,
        };
        // Through the softmax and the scale: dS = scale · P ⊙ (dP - rowsum(dP ⊙ P)).
        par_chunks_mut(&mut grad, h * s * s, |start, g| {
            let p = &probs[start..start + g.len()];
            for (g_row, p_row) in g.chunks_exact_mut(s).zip(p.chunks_exact(s)) {
                let dot: f32 = g_row.iter().zip(p_row).map(|(a, b)| a * b).sum();
                for (x, &pv) in g_row.iter_mut().zip(p_row) {
                    *x = self.scale * pv * (*x - dot);
                }
            }
        });
        let dq = self.per_head(&grad, false, k, hidden);
        let dk = self.per_head(&grad, true, q, hidden);
        Ok((dq, dk, dv))
    }
}
