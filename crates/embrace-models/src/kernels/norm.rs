//! LayerNorm, alone and fused with the bias and residual that precede it in post-LN layers.

use super::math::{simd_dispatch, sum};

/// A row's mean and `1/√(variance + eps)` (eight-lane sums, so the loops vectorise).
#[inline(always)]
fn row_stats(row: &[f32], eps: f32) -> (f32, f32) {
    let n = row.len() as f32;
    let mean = sum(row) / n;
    let mut acc = [0.0f32; 8];
    let chunks = row.chunks_exact(8);
    let tail: f32 = chunks
        .remainder()
        .iter()
        .map(|x| (x - mean) * (x - mean))
        .sum();
    for c in chunks {
        for (a, x) in acc.iter_mut().zip(c) {
            *a += (x - mean) * (x - mean);
        }
    }
    let var = (acc.iter().sum::<f32>() + tail) / n;
    (mean, 1.0 / (var + eps).sqrt())
}

#[inline(always)]
fn normalize_row(row: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) {
    let (mean, inv) = row_stats(row, eps);
    if beta.is_empty() {
        row.iter_mut()
            .zip(gamma)
            .for_each(|(x, g)| *x = (*x - mean) * inv * g);
    } else {
        row.iter_mut()
            .zip(gamma)
            .zip(beta)
            .for_each(|((x, g), b)| *x = (*x - mean) * inv * g + b);
    }
}

simd_dispatch! {
    /// LayerNorm over rows of `gamma.len()` elements, in place. `beta` may be empty (no bias).
    fn layer_norm(rows: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) {
        let width = gamma.len();
        assert!(width > 0 && rows.len().is_multiple_of(width), "rows are not a multiple of the width");
        assert!(beta.is_empty() || beta.len() == width, "beta length differs from gamma");
        for row in rows.chunks_exact_mut(width) {
            normalize_row(row, gamma, beta, eps);
        }
    }
}

simd_dispatch! {
    /// `x = LayerNorm(x + bias + residual)`, row by row, in place. `bias` and `beta` may be empty.
    fn add_bias_residual_layer_norm(
        x: &mut [f32],
        bias: &[f32],
        residual: &[f32],
        gamma: &[f32],
        beta: &[f32],
        eps: f32,
    ) {
        let width = gamma.len();
        assert_eq!(x.len(), residual.len(), "residual length differs");
        assert!(width > 0 && x.len().is_multiple_of(width), "rows are not a multiple of the width");
        assert!(bias.is_empty() || bias.len() == width, "bias length differs from gamma");
        for (row, res) in x.chunks_exact_mut(width).zip(residual.chunks_exact(width)) {
            if bias.is_empty() {
                row.iter_mut().zip(res).for_each(|(x, r)| *x += r);
            } else {
                row.iter_mut().zip(res).zip(bias).for_each(|((x, r), b)| *x += r + b);
            }
            normalize_row(row, gamma, beta, eps);
        }
    }
}

simd_dispatch! {
    /// LayerNorm's backward pass over rows of `gamma.len()` elements: writes `dx` and adds each
    /// row's share of the γ and β gradients to `dgamma` and `dbeta`.
    fn layer_norm_backward(
        x: &[f32],
        dy: &[f32],
        gamma: &[f32],
        eps: f32,
        dx: &mut [f32],
        dgamma: &mut [f32],
        dbeta: &mut [f32],
    ) {
        let width = gamma.len();
        assert!(width > 0 && x.len().is_multiple_of(width), "rows are not a multiple of the width");
        assert!(dy.len() == x.len() && dx.len() == x.len(), "gradient lengths differ");
        assert!(dgamma.len() == width && dbeta.len() == width, "γ and β gradients differ in width");
        let n = width as f32;
        let rows = x.chunks_exact(width).zip(dy.chunks_exact(width)).zip(dx.chunks_exact_mut(width));
        for ((row, d), out) in rows {
            let (mean, r) = row_stats(row, eps);
            // dx̂ = dy·γ; dx = r·(dx̂ - mean(dx̂) - x̂·mean(dx̂·x̂)), with x̂ = (x - μ)·r.
            let (mut sums, mut dots) = ([0.0f32; 8], [0.0f32; 8]);
            let (mut sum_tail, mut dot_tail) = (0.0f32, 0.0f32);
            let parts = d.chunks_exact(8).zip(gamma.chunks_exact(8)).zip(row.chunks_exact(8));
            for ((dc, gc), xc) in parts {
                for k in 0..8 {
                    let dn = dc[k] * gc[k];
                    sums[k] += dn;
                    dots[k] += dn * ((xc[k] - mean) * r);
                }
            }
            let tail = width / 8 * 8;
            for k in tail..width {
                let dn = d[k] * gamma[k];
                sum_tail += dn;
                dot_tail += dn * ((row[k] - mean) * r);
            }
            let mean_dn = (sums.iter().sum::<f32>() + sum_tail) / n;
            let mean_dot = (dots.iter().sum::<f32>() + dot_tail) / n;
            for k in 0..width {
                let xh = (row[k] - mean) * r;
                out[k] = r * (d[k] * gamma[k] - mean_dn - xh * mean_dot);
                dgamma[k] += d[k] * xh;
                dbeta[k] += d[k];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fused_equals_unfused() {
        let x: Vec<f32> = (0..12).map(|i| (i as f32 * 0.7).sin()).collect();
        let res: Vec<f32> = (0..12).map(|i| (i as f32 * 0.3).cos()).collect();
        let bias = [0.1, -0.2, 0.3, 0.0];
        let gamma = [1.0, 2.0, 0.5, 1.5];
        let beta = [0.0, 0.1, 0.2, 0.3];
        let mut fused = x.clone();
        add_bias_residual_layer_norm(&mut fused, &bias, &res, &gamma, &beta, 1e-12);
        let mut plain: Vec<f32> = x
            .iter()
            .zip(&res)
            .enumerate()
            .map(|(i, (a, r))| a + r + bias[i % 4])
            .collect();
        layer_norm(&mut plain, &gamma, &beta, 1e-12);
        for (a, b) in fused.iter().zip(&plain) {
            assert!((a - b).abs() < 1e-6);
        }
        let row = &plain[..4];
        let normalized: Vec<f32> = row
            .iter()
            .zip(gamma.iter().zip(&beta))
            .map(|(y, (g, b))| (y - b) / g)
            .collect();
        let mean: f32 = normalized.iter().sum::<f32>() / 4.0;
        assert!(mean.abs() < 1e-5);
    }
}
