//! CPU building blocks for other crates' tensor code (the trainer's custom operations): dense
//! `f32` products on the same `gemm` engine as this crate's kernels, and parallel loops.
//!
//! Everything here runs on candle's barrier pool, the pool candle's own CPU operations use, so
//! code that mixes these with candle tensors keeps one set of threads busy instead of two.

use std::mem::MaybeUninit;

pub use crate::kernels::matmul::View as MatrixView;
use crate::kernels::matmul::{block_product, matmul, pooled_block_rows};
use crate::kernels::pool;

/// `dst = lhs · rhs` on the calling thread, each operand a strided view of its slice
/// (meant for the small per-head products inside a loop that is already spread over the pool).
///
/// Panics if the shapes disagree or a view reaches outside its slice.
pub fn product(
    dst: &mut [f32],
    dst_view: MatrixView,
    lhs: &[f32],
    lhs_view: MatrixView,
    rhs: &[f32],
    rhs_view: MatrixView,
) {
    matmul(
        dst, dst_view, lhs, lhs_view, rhs, rhs_view, 1.0, false, false,
    );
}

/// `dst += scale · lhs · rhs` on the calling thread, with the views of [`product`].
///
/// Panics if the shapes disagree or a view reaches outside its slice.
pub fn product_add(
    dst: &mut [f32],
    dst_view: MatrixView,
    lhs: &[f32],
    lhs_view: MatrixView,
    rhs: &[f32],
    rhs_view: MatrixView,
    scale: f32,
) {
    matmul(
        dst, dst_view, lhs, lhs_view, rhs, rhs_view, scale, true, false,
    );
}

/// LayerNorm over rows of `gamma.len()` values, in place: `(x - μ)/√(σ² + eps)·γ + β`
/// (vectorized; `beta` may be empty for no shift).
///
/// Panics if `rows` is not whole rows or `beta` is neither empty nor as long as `gamma`.
pub fn layer_norm(rows: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) {
    crate::kernels::norm::layer_norm(rows, gamma, beta, eps);
}

/// The backward pass of [`layer_norm`] over rows of `gamma.len()` values: writes the input's
/// gradient into `dx` and adds the rows' γ and β gradients to `dgamma` and `dbeta`.
///
/// Panics if the lengths disagree.
#[allow(clippy::too_many_arguments)]
pub fn layer_norm_backward(
    x: &[f32],
    dy: &[f32],
    gamma: &[f32],
    eps: f32,
    dx: &mut [f32],
    dgamma: &mut [f32],
    dbeta: &mut [f32],
) {
    crate::kernels::norm::layer_norm_backward(x, dy, gamma, eps, dx, dgamma, dbeta);
}

/// Softmax of every `width`-long row of `rows`, in place, of the values times `scale`
/// (vectorized; a `-inf` entry gets e^-87, about 1.6e-38, times the weight of the row's
/// largest; a row of only `-inf` becomes zeros).
///
/// Panics if `rows` is not whole rows.
pub fn softmax_rows(rows: &mut [f32], width: usize, scale: f32) {
    crate::kernels::math::softmax_rows(rows, width, scale);
}

/// Calls `f(start, chunk)` for every `chunk_len`-long chunk of `data` (the last may be
/// shorter; `start` is the index of its first element), spread over the pool's threads.
///
/// Panics if `chunk_len` is 0.
pub fn par_chunks_mut(data: &mut [f32], chunk_len: usize, f: impl Fn(usize, &mut [f32]) + Sync) {
    pool::for_each_chunk_mut(data, chunk_len, f);
}

/// A new vector of `len` values built chunk by chunk on the pool's threads: each
/// `chunk_len`-long chunk (the last may be shorter) is zeroed and handed to
/// `f(start, chunk)`. Unlike `vec![0.0; len]` followed by a parallel loop, no thread zeroes
/// the whole vector first.
///
/// Panics if `chunk_len` is 0.
pub fn par_fill(len: usize, chunk_len: usize, f: impl Fn(usize, &mut [f32]) + Sync) -> Vec<f32> {
    let mut values: Vec<f32> = Vec::with_capacity(len);
    pool::for_each_chunk_mut(
        &mut values.spare_capacity_mut()[..len],
        chunk_len,
        |start, chunk| {
            chunk.fill(MaybeUninit::new(0.0));
            // SAFETY: every element of `chunk` was initialized just above, and
            // `MaybeUninit<f32>` has the layout of `f32`.
            #[allow(unsafe_code)]
            let chunk = unsafe { &mut *(std::ptr::from_mut(chunk) as *mut [f32]) };
            f(start, chunk);
        },
    );
    // SAFETY: the loop above visited every chunk of the first `len` elements and initialized
    // each one (`for_each_chunk_mut` calls `f` once per chunk, on every thread count).
    #[allow(unsafe_code)]
    unsafe {
        values.set_len(len);
    }
    values
}

/// `lhs[rows x k] · rhs` (+ `bias` on every row) for a `k x n` view `rhs`, row-major, the rows
/// split into one block per pool thread.
fn pooled_product(
    lhs: &[f32],
    rows: usize,
    k: usize,
    rhs: &[f32],
    rhs_view: MatrixView,
    bias: Option<&[f32]>,
) -> Vec<f32> {
    let n = rhs_view.cols;
    assert_eq!(lhs.len(), rows * k, "the input is not rows x k");
    if n == 0 {
        return Vec::new();
    }
    par_fill(rows * n, pooled_block_rows(rows) * n, |start, block| {
        block_product(block, start / n, lhs, k, rhs, rhs_view, bias);
    })
}

/// `x · Wᵀ` for `x` `[rows, inp]` and a weight `W` `[out, inp]` (PyTorch's `nn.Linear`
/// layout), both row-major, plus the bias `b` (`out` values) on every row when given: the
/// `[rows, out]` result, row-major.
///
/// Panics if `x` is not `rows * inp` long, `w` not `out * inp` or `b` not `out`.
pub fn linear(
    x: &[f32],
    rows: usize,
    w: &[f32],
    b: Option<&[f32]>,
    out: usize,
    inp: usize,
) -> Vec<f32> {
    assert_eq!(w.len(), out * inp, "w is not out x inp");
    assert!(b.is_none_or(|b| b.len() == out), "b is not out long");
    pooled_product(x, rows, inp, w, MatrixView::transposed(inp, out), b)
}

/// `g · W` for `g` `[rows, out]` and a weight `W` `[out, inp]`, both row-major: the gradient of
/// [`linear`] with respect to its input, `[rows, inp]`.
///
/// Panics if `g` is not `rows * out` long or `w` not `out * inp`.
pub fn linear_input_grad(g: &[f32], rows: usize, w: &[f32], out: usize, inp: usize) -> Vec<f32> {
    assert_eq!(w.len(), out * inp, "w is not out x inp");
    pooled_product(g, rows, out, w, MatrixView::row_major(out, inp), None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_input_gradient_is_the_transposed_product() {
        let (rows, out, inp) = (40, 3, 4);
        let w: Vec<f32> = (0..out * inp).map(|i| i as f32 - 5.0).collect();
        let x: Vec<f32> = (0..rows * inp).map(|i| (i % 7) as f32).collect();
        let y = linear(&x, rows, &w, None, out, inp);
        let g: Vec<f32> = (0..rows * out).map(|i| (i % 5) as f32 - 2.0).collect();
        let dx = linear_input_grad(&g, rows, &w, out, inp);
        // <g, x·Wᵀ> == <g·W, x>: the two products are adjoint.
        let lhs: f32 = g.iter().zip(&y).map(|(a, b)| a * b).sum();
        let rhs: f32 = dx.iter().zip(&x).map(|(a, b)| a * b).sum();
        assert_eq!(lhs, rhs);
        assert_eq!(
            y[out + 1],
            (0..inp).map(|i| x[inp + i] * w[inp + i]).sum::<f32>()
        );
        let b = [0.5, -1.0, 2.0];
        let yb = linear(&x, rows, &w, Some(&b), out, inp);
        assert!(
            yb.iter()
                .zip(&y)
                .enumerate()
                .all(|(i, (a, c))| *a == c + b[i % out])
        );
    }

    #[test]
    fn products_split_over_threads_match_naive() {
        let (k, n) = (9, 5);
        let w: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.23).cos()).collect();
        for rows in [0, 1, 31, 32, 33, 100] {
            let x: Vec<f32> = (0..rows * k).map(|i| (i as f32 * 0.37).sin()).collect();
            // w read as `[n, k]` (linear), then as `[k, n]` (the input gradient's product).
            let y = linear(&x, rows, &w, None, n, k);
            let g = linear_input_grad(&x, rows, &w, k, n);
            for r in 0..rows {
                for c in 0..n {
                    let want: f32 = (0..k).map(|i| x[r * k + i] * w[c * k + i]).sum();
                    assert!((y[r * n + c] - want).abs() < 1e-5, "{rows} rows");
                    let want: f32 = (0..k).map(|i| x[r * k + i] * w[i * n + c]).sum();
                    assert!((g[r * n + c] - want).abs() < 1e-5, "{rows} rows");
                }
            }
        }
    }

    #[test]
    fn par_fill_builds_every_chunk() {
        for len in [0, 1, 7, 1000] {
            let v = par_fill(len, 7, |start, c| {
                assert!(c.iter().all(|&x| x == 0.0));
                for (k, x) in c.iter_mut().enumerate() {
                    *x = (start + k) as f32;
                }
            });
            assert!(v.iter().enumerate().all(|(i, &x)| x == i as f32));
            assert_eq!(v.len(), len);
        }
    }
}
