//! Matrix products through the `gemm` crate (the engine of candle's CPU matmul), behind a safe
//! interface that checks every operand's extent before handing raw pointers over.

use gemm::Parallelism;

/// A matrix view: `rows x cols` elements of a slice, element `(r, c)` at `r * row_stride +
/// c * col_stride`.
#[derive(Clone, Copy, Debug)]
pub struct View {
    /// Number of rows.
    pub rows: usize,
    /// Number of columns.
    pub cols: usize,
    /// Distance between rows, in elements.
    pub row_stride: usize,
    /// Distance between columns, in elements.
    pub col_stride: usize,
}

impl View {
    /// A dense row-major `rows x cols` matrix.
    pub fn row_major(rows: usize, cols: usize) -> Self {
        Self {
            rows,
            cols,
            row_stride: cols,
            col_stride: 1,
        }
    }

    /// The transpose of a dense row-major `cols x rows` matrix.
    pub fn transposed(rows: usize, cols: usize) -> Self {
        Self {
            rows,
            cols,
            row_stride: 1,
            col_stride: rows,
        }
    }

    /// Panics unless every element lies inside a slice of `len` elements.
    fn check(&self, len: usize, what: &str) {
        if self.rows == 0 || self.cols == 0 {
            return;
        }
        let last = (self.rows - 1) * self.row_stride + (self.cols - 1) * self.col_stride;
        assert!(
            last < len,
            "{what}: a {}x{} view with strides ({}, {}) reaches element {last} of {len}",
            self.rows,
            self.cols,
            self.row_stride,
            self.col_stride
        );
    }
}

/// How many threads a product of this many multiply-adds should use.
fn parallelism(flops: usize) -> Parallelism {
    let threads = rayon::current_num_threads();
    if threads > 1 && flops >= 1 << 18 {
        Parallelism::Rayon(threads)
    } else {
        Parallelism::None
    }
}

/// `dst = lhs · rhs` (or `dst += lhs · rhs` with `accumulate`), scaled by `scale`.
///
/// Panics if the shapes disagree or a view reaches outside its slice.
#[allow(clippy::too_many_arguments)]
pub(crate) fn matmul(
    dst: &mut [f32],
    dst_view: View,
    lhs: &[f32],
    lhs_view: View,
    rhs: &[f32],
    rhs_view: View,
    scale: f32,
    accumulate: bool,
    threaded: bool,
) {
    assert_eq!(lhs_view.cols, rhs_view.rows, "inner dimensions differ");
    assert_eq!(dst_view.rows, lhs_view.rows, "row counts differ");
    assert_eq!(dst_view.cols, rhs_view.cols, "column counts differ");
    dst_view.check(dst.len(), "dst");
    lhs_view.check(lhs.len(), "lhs");
    rhs_view.check(rhs.len(), "rhs");
    let (m, n, k) = (dst_view.rows, dst_view.cols, lhs_view.cols);
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for r in 0..m {
                for c in 0..n {
                    dst[r * dst_view.row_stride + c * dst_view.col_stride] = 0.0;
                }
            }
        }
        return;
    }
    let par = if threaded {
        parallelism(m * n * k)
    } else {
        Parallelism::None
    };
    let stride = |s: usize| s as isize;
    // SAFETY: the three views were checked above to stay inside their slices, `dst` is borrowed
    // mutably (no aliasing with `lhs`/`rhs`), and the dimensions passed agree with the views.
    #[allow(unsafe_code)]
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            stride(dst_view.col_stride),
            stride(dst_view.row_stride),
            accumulate,
            lhs.as_ptr(),
            stride(lhs_view.col_stride),
            stride(lhs_view.row_stride),
            rhs.as_ptr(),
            stride(rhs_view.col_stride),
            stride(rhs_view.row_stride),
            1.0,
            scale,
            false,
            false,
            false,
            par,
        );
    }
}

/// `dst[rows x out] = x[rows x in] · wᵀ` for a weight `w` stored `[out, in]` as in PyTorch's
/// `nn.Linear`: the row-dot kernel for a few rows, `gemm` otherwise.
pub(crate) fn linear(dst: &mut [f32], x: &[f32], rows: usize, w: &[f32], out: usize, inp: usize) {
    if rows <= super::rowdot::MAX_ROWS {
        super::rowdot::matmul_bt_rows(dst, x, rows, w, out, inp);
        return;
    }
    matmul(
        dst,
        View::row_major(rows, out),
        x,
        View::row_major(rows, inp),
        w,
        View::transposed(inp, out),
        1.0,
        false,
        true,
    );
}

/// Rows per block when a product's rows are split over candle's barrier pool, one block per
/// thread (each block then packs the weight once), but at least 32 rows (smaller blocks
/// multiply at a fraction of `gemm`'s speed).
pub(crate) fn pooled_block_rows(rows: usize) -> usize {
    rows.div_ceil(super::pool::threads()).max(32)
}

/// Rows `first..first + dst.len() / n` of `lhs[rows x k] · rhs` (+ `bias` on every row), `rhs`
/// a `k x n` view and `lhs` dense row-major, as one single-threaded `gemm` call: a block of a
/// product split over candle's barrier pool.
///
/// Training runs candle's own operations on that pool; `gemm`'s rayon threads beside it made
/// four busy threads on two cores, the pool's worker spinning while rayon multiplied.
///
/// Panics if the shapes disagree or a view reaches outside its slice.
pub(crate) fn block_product(
    dst: &mut [f32],
    first: usize,
    lhs: &[f32],
    k: usize,
    rhs: &[f32],
    rhs_view: View,
    bias: Option<&[f32]>,
) {
    let n = rhs_view.cols;
    assert_eq!(rhs_view.rows, k, "inner dimensions differ");
    if n == 0 {
        return;
    }
    assert!(dst.len().is_multiple_of(n), "dst is not whole rows");
    let r = dst.len() / n;
    matmul(
        dst,
        View::row_major(r, n),
        &lhs[first * k..(first + r) * k],
        View::row_major(r, k),
        rhs,
        rhs_view,
        1.0,
        false,
        false,
    );
    if let Some(bias) = bias {
        super::math::add_bias_activation(dst, bias, crate::Activation::Identity);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_product_matches_naive() {
        let (rows, inp, out) = (5, 7, 3);
        let _x: Vec<f32> = (0..rows * inp).map(|i| (i as f32 * 0.37).sin()).collect();
        let w: Vec<f32> = (0..out * inp).map(|i| (i as f32 * 0.11).cos()).collect();
        for rows in [rows, 40] {
            let x: Vec<f32> = (0..rows * inp).map(|i| (i as f32 * 0.37).sin()).collect();
            let mut dst = vec![0.0; rows * out];
            linear(&mut dst, &x, rows, &w, out, inp);
            for r in 0..rows {
                for o in 0..out {
                    let want: f32 = (0..inp).map(|i| x[r * inp + i] * w[o * inp + i]).sum();
                    assert!((dst[r * out + o] - want).abs() < 1e-5);
                }
            }
        }
    }

    #[test]
    #[should_panic(expected = "reaches element")]
    fn out_of_bounds_views_panic_before_any_read() {
        let mut dst = vec![0.0; 4];
        matmul(
            &mut dst,
            View::row_major(2, 2),
            &[1.0; 3],
            View::row_major(2, 2),
            &[1.0; 4],
            View::row_major(2, 2),
            1.0,
            false,
            false,
        );
    }
}
