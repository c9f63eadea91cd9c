//! `x · Wᵀ` for a handful of rows (batch-1 latency), streaming the weight once.
//!
//! With few rows a matrix product is bound by reading the weight, and `gemm` spends as long
//! repacking `W` into its panel layout as multiplying. Here each output is a dot product of an
//! input row with a weight row `W[o, :]`, which PyTorch's `[out, in]` layout stores contiguously:
//! a tile of 4 rows x 3 outputs keeps 12 eight-lane accumulators in registers while the three
//! weight rows stream through once, so the weight is read sequentially and exactly once per
//! call (split by output across threads).

use rayon::prelude::*;

/// Largest number of rows for which [`matmul_bt_rows`] beats `gemm` (measured on MiniLM shapes).
pub(crate) const MAX_ROWS: usize = 48;

/// How many output tiles ahead the weight rows are prefetched. On MiniLM's 42 MB of encoder
/// weights (more than L3) at 8-48 rows, one pass went from 24-61 to 54-76 GFLOP/s on a Zen 4
/// core with a distance of 2 tiles and an L2 hint; 1 and 4 were no better, an L1 hint slower.
const PREFETCH_TILES: usize = 2;

/// A way to compute one tile: `R` rows x `O` outputs, `out[r][o] = x_r · w_o`, every slice
/// holding `inp` values.
trait Tile {
    /// The tile's dot products. `ahead` is weight data a later tile will read; an
    /// implementation may prefetch it.
    fn tile<const R: usize, const O: usize>(
        xs: [&[f32]; R],
        ws: [&[f32]; O],
        inp: usize,
        ahead: &[f32],
    ) -> [[f32; O]; R];
}

/// Portable Rust, for CPUs without AVX2 + FMA.
struct Portable;

impl Tile for Portable {
    #[inline(always)]
    fn tile<const R: usize, const O: usize>(
        xs: [&[f32]; R],
        ws: [&[f32]; O],
        inp: usize,
        _ahead: &[f32],
    ) -> [[f32; O]; R] {
        let mut out = [[0.0f32; O]; R];
        for r in 0..R {
            for o in 0..O {
                out[r][o] = xs[r][..inp]
                    .iter()
                    .zip(&ws[o][..inp])
                    .map(|(a, b)| a * b)
                    .sum();
            }
        }
        out
    }
}

/// Where the operands of [`columns`] are: row `r` of `x` starts at `r * x_stride`, weight row
/// `o` at `o * w_stride`, each `inp` long.
#[derive(Clone, Copy)]
pub(crate) struct Strides {
    pub x: usize,
    pub w: usize,
    pub inp: usize,
}

/// Computes output columns `first_out..first_out + n_out` for all rows into `dst_cols`
/// (`rows x n_out`, row-major).
#[inline(always)]
fn columns<T: Tile>(
    dst_cols: &mut [f32],
    x: &[f32],
    rows: usize,
    w: &[f32],
    first_out: usize,
    n_out: usize,
    st: Strides,
) {
    let inp = st.inp;
    let xrow = |r: usize| &x[r * st.x..r * st.x + inp];
    let wrow = |o: usize| &w[(first_out + o) * st.w..(first_out + o) * st.w + inp];
    // Outputs outer, rows inner: the three weight rows of a tile stay in L1 while every row
    // tile uses them, so the weight is read from memory once.
    // With few rows the weight streams from memory faster than the hardware prefetcher
    // fetches it: the first row tile of each output tile prefetches, into L2, the weight rows
    // of the output tile `PREFETCH_TILES` ahead (contiguous when the weight is dense).
    let dense = st.w == inp;
    let mut o = 0;
    while o < n_out {
        let ot = (n_out - o).min(3);
        let next = first_out + o + ot + 3 * (PREFETCH_TILES - 1);
        let ahead_end = (first_out + n_out).min(next + 3);
        let ahead: &[f32] = if dense && next < ahead_end {
            &w[next * inp..ahead_end * inp]
        } else {
            &[]
        };
        let mut r = 0;
        while r < rows {
            let rt = (rows - r).min(4);
            let ahead = if r == 0 { ahead } else { &[] };
            macro_rules! run {
                ($R:literal, $O:literal) => {{
                    let xs: [&[f32]; $R] = std::array::from_fn(|k| xrow(r + k));
                    let ws: [&[f32]; $O] = std::array::from_fn(|k| wrow(o + k));
                    let t = T::tile::<$R, $O>(xs, ws, inp, ahead);
                    for (k, row) in t.iter().enumerate() {
                        dst_cols[(r + k) * n_out + o..(r + k) * n_out + o + $O]
                            .copy_from_slice(row);
                    }
                }};
            }
            match (rt, ot) {
                (4, 3) => run!(4, 3),
                (4, 2) => run!(4, 2),
                (4, _) => run!(4, 1),
                (3, 3) => run!(3, 3),
                (3, 2) => run!(3, 2),
                (3, _) => run!(3, 1),
                (2, 3) => run!(2, 3),
                (2, 2) => run!(2, 2),
                (2, _) => run!(2, 1),
                (_, 3) => run!(1, 3),
                (_, 2) => run!(1, 2),
                (_, _) => run!(1, 1),
            }
            r += rt;
        }
        o += ot;
    }
}

/// AVX2 + FMA intrinsics (LLVM does not keep a portable version's 12 accumulators in
/// registers).
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod avx2 {
    use std::arch::x86_64::*;

    /// Only reached through [`columns`], which is only called after checking the CPU.
    pub(super) struct Avx2;

    impl super::Tile for Avx2 {
        #[inline(always)]
        fn tile<const R: usize, const O: usize>(
            xs: [&[f32]; R],
            ws: [&[f32]; O],
            inp: usize,
            ahead: &[f32],
        ) -> [[f32; O]; R] {
            // SAFETY: `Avx2` is only used by `columns` below, whose caller checked AVX2 + FMA.
            unsafe { tile(xs, ws, inp, ahead) }
        }
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn tile<const R: usize, const O: usize>(
        xs: [&[f32]; R],
        ws: [&[f32]; O],
        inp: usize,
        ahead: &[f32],
    ) -> [[f32; O]; R] {
        let n8 = inp / 8;
        assert!(
            xs.iter().chain(ws.iter()).all(|s| s.len() >= inp),
            "tile rows are shorter than inp"
        );
        let mut acc = [[_mm256_setzero_ps(); O]; R];
        // `ahead` is spread over the loop: `step` floats (whole cache lines) per iteration.
        let step = if ahead.is_empty() {
            0
        } else {
            ahead.len().div_ceil(n8.max(1)).next_multiple_of(16)
        };
        for i in 0..n8 {
            let mut at = i * step;
            while at < ((i + 1) * step).min(ahead.len()) {
                // SAFETY: `at < ahead.len()`; a prefetch never faults.
                unsafe { _mm_prefetch::<_MM_HINT_T1>(ahead.as_ptr().add(at).cast()) };
                at += 16;
            }
            let mut wv = [_mm256_setzero_ps(); O];
            for o in 0..O {
                // SAFETY: i * 8 + 8 <= inp <= ws[o].len() (asserted above).
                wv[o] = unsafe { _mm256_loadu_ps(ws[o].as_ptr().add(i * 8)) };
            }
            for r in 0..R {
                // SAFETY: as above, for xs[r].
                let xv = unsafe { _mm256_loadu_ps(xs[r].as_ptr().add(i * 8)) };
                for o in 0..O {
                    acc[r][o] = _mm256_fmadd_ps(xv, wv[o], acc[r][o]);
                }
            }
        }
        let mut out = [[0.0f32; O]; R];
        for r in 0..R {
            for o in 0..O {
                let v = acc[r][o];
                let s4 = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
                let s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
                let s1 = _mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 1));
                let mut s = _mm_cvtss_f32(s1);
                for i in n8 * 8..inp {
                    s = xs[r][i].mul_add(ws[o][i], s);
                }
                out[r][o] = s;
            }
        }
        out
    }

    /// [`super::columns`] compiled with AVX2 + FMA and the intrinsics tile.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn columns(
        dst: &mut [f32],
        x: &[f32],
        rows: usize,
        w: &[f32],
        first: usize,
        n: usize,
        st: super::Strides,
    ) {
        super::columns::<Avx2>(dst, x, rows, w, first, n, st)
    }
}

fn columns_dispatch(
    dst: &mut [f32],
    x: &[f32],
    rows: usize,
    w: &[f32],
    first: usize,
    n: usize,
    st: Strides,
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU supports AVX2 and FMA (checked just above).
        #[allow(unsafe_code)]
        unsafe {
            return avx2::columns(dst, x, rows, w, first, n, st);
        }
    }
    columns::<Portable>(dst, x, rows, w, first, n, st)
}

/// `dst[rows x n_out] = x · wᵀ` for strided rows (see [`Strides`]): attention's `Q · Kᵀ` and
/// `P · V` on small sequences, single-threaded.
///
/// Panics if a row reaches past its slice.
pub(crate) fn dot_products(
    dst: &mut [f32],
    x: &[f32],
    rows: usize,
    w: &[f32],
    n_out: usize,
    st: Strides,
) {
    assert_eq!(dst.len(), rows * n_out, "dst is not rows x n_out");
    columns_dispatch(dst, x, rows, w, 0, n_out, st)
}

/// `dst[rows x out] = x[rows x inp] · wᵀ` for `w` `[out, inp]` row-major, meant for
/// `rows <= MAX_ROWS`.
pub(crate) fn matmul_bt_rows(
    dst: &mut [f32],
    x: &[f32],
    rows: usize,
    w: &[f32],
    out: usize,
    inp: usize,
) {
    assert_eq!(dst.len(), rows * out, "dst is not rows x out");
    assert_eq!(x.len(), rows * inp, "x is not rows x inp");
    assert_eq!(w.len(), out * inp, "w is not out x inp");
    let dense = Strides {
        x: inp,
        w: inp,
        inp,
    };
    let threads = rayon::current_num_threads();
    if threads <= 1 || out * inp < 1 << 16 {
        columns_dispatch(dst, x, rows, w, 0, out, dense);
        return;
    }
    // Split the outputs across threads; each computes its columns into a private block.
    let per = out.div_ceil(threads).div_ceil(3) * 3;
    let blocks: Vec<(usize, Vec<f32>)> = (0..out)
        .step_by(per)
        .collect::<Vec<_>>()
        .into_par_iter()
        .map(|first| {
            let n = per.min(out - first);
            let mut block = vec![0.0f32; rows * n];
            columns_dispatch(&mut block, x, rows, w, first, n, dense);
            (first, block)
        })
        .collect();
    for (first, block) in blocks {
        let n = block.len() / rows.max(1);
        for r in 0..rows {
            dst[r * out + first..r * out + first + n].copy_from_slice(&block[r * n..(r + 1) * n]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tile_shape_matches_naive() {
        for rows in 1..=9 {
            for out in [1, 2, 3, 4, 5, 7] {
                for inp in [1, 7, 8, 9, 17, 40] {
                    let x: Vec<f32> = (0..rows * inp).map(|i| (i as f32 * 0.37).sin()).collect();
                    let w: Vec<f32> = (0..out * inp).map(|i| (i as f32 * 0.11).cos()).collect();
                    let mut dst = vec![0.0; rows * out];
                    matmul_bt_rows(&mut dst, &x, rows, &w, out, inp);
                    let mut portable = vec![0.0; rows * out];
                    columns::<Portable>(
                        &mut portable,
                        &x,
                        rows,
                        &w,
                        0,
                        out,
                        Strides {
                            x: inp,
                            w: inp,
                            inp,
                        },
                    );
                    for (a, b) in dst.iter().zip(&portable) {
                        assert!((a - b).abs() < 1e-4);
                    }
                    for r in 0..rows {
                        for o in 0..out {
                            let want: f32 = (0..inp).map(|i| x[r * inp + i] * w[o * inp + i]).sum();
                            assert!((dst[r * out + o] - want).abs() < 1e-4, "{rows}x{out}x{inp}");
                        }
                    }
                }
            }
        }
    }
}
