//! Vectorisable `exp`, `erf`, `tanh` and the activations built on them.
//!
//! The functions are branch-free polynomial approximations so that the compiler turns the loops
//! over slices into SIMD code. [`simd_dispatch!`] compiles each slice loop twice, once for
//! AVX2 + FMA (chosen at run time when the CPU has them) and once for the baseline target.

/// Defines `pub(crate) fn $name($args)` that runs `$body` compiled with AVX2 and FMA enabled when
/// the CPU supports them, and compiled for the baseline target otherwise.
macro_rules! simd_dispatch {
    ($(#[$meta:meta])* fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        $(#[$meta])*
        pub(crate) fn $name($($arg: $ty),*) {
            #[inline(always)]
            fn body($($arg: $ty),*) $body

            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                fn avx2($($arg: $ty),*) {
                    body($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    // SAFETY: the CPU supports the features `avx2` is compiled with (checked
                    // just above); the function itself is safe Rust.
                    #[allow(unsafe_code)]
                    unsafe {
                        return avx2($($arg),*);
                    }
                }
            }
            body($($arg),*)
        }
    };
}
pub(crate) use simd_dispatch;

use crate::activation::Activation;

/// `e^x` for `f32`, relative error below 2e-7 on the whole finite range; inputs below -87 give
/// 0-ish denormal-free results and inputs above 88 saturate to `f32::MAX`-scale values.
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let x = x.clamp(-87.0, 88.0);
    // n = round(x / ln 2), r = x - n ln 2 in [-ln2/2, ln2/2]
    let n = (x * LOG2E + 0.5).floor();
    let r = x - n * LN2_HI - n * LN2_LO;
    // Cephes' minimax polynomial for e^r on that interval.
    let mut p = 1.987_569_1e-4_f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_6e-1;
    p = p * r + 5e-1;
    let e = p * r * r + r + 1.0;
    // 2^n by building the exponent bits; n is in [-126, 127] after the clamp. Adding 1.5·2^23
    // puts the integer n + 127 in the low mantissa bits, so no float-to-int conversion is needed
    // (`as i32` saturates lane by lane and keeps the loop from vectorising).
    const MAGIC: f32 = 12_582_912.0;
    let biased = (n + (127.0 + MAGIC)).to_bits();
    let scale = f32::from_bits(biased << 23);
    e * scale
}

/// The error function for `f32` (Eigen's rational approximation; absolute error below 3e-7).
#[inline(always)]
pub(crate) fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = -2.726_142_3e-10_f32;
    p = p * x2 + 2.770_681_4e-8;
    p = p * x2 + -2.101_024e-6;
    p = p * x2 + -5.692_506_4e-5;
    p = p * x2 + -7.349_906_3e-4;
    p = p * x2 + -2.954_6e-3;
    p = p * x2 + -1.609_603_3e-2;
    p *= x;
    let mut q = -1.456_607_2e-5_f32;
    q = q * x2 + -2.133_740_6e-4;
    q = q * x2 + -1.682_827e-3;
    q = q * x2 + -7.373_329e-3;
    q = q * x2 + -1.426_474e-2;
    p / q
}

/// `tanh` for `f32` (Cephes' `tanhf`: an odd polynomial below 0.625, else
/// `1 - 2 / (e^{2|x|} + 1)`), within a few units in the last place of the exact value.
#[inline(always)]
pub(crate) fn tanh(x: f32) -> f32 {
    let a = x.abs();
    let z = x * x;
    let mut p = -5.704_988_7e-3_f32;
    p = p * z + 2.063_909e-2;
    p = p * z - 5.373_971_6e-2;
    p = p * z + 1.333_144_2e-1;
    p = p * z - 3.333_328e-1;
    let small = p * z * x + x;
    let large = (1.0 - 2.0 / (exp(2.0 * a.min(10.0)) + 1.0)).copysign(x);
    if a < 0.625 { small } else { large }
}

/// The logistic function.
#[inline(always)]
pub(crate) fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

#[inline(always)]
fn apply(act: Activation, x: f32) -> f32 {
    match act {
        Activation::Gelu => 0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2)),
        Activation::GeluTanh => {
            const C: f32 = 0.797_884_6; // sqrt(2 / pi)
            0.5 * x * (1.0 + tanh(C * (x + 0.044_715 * x * x * x)))
        }
        Activation::QuickGelu => x * sigmoid(1.702 * x),
        Activation::Relu => x.max(0.0),
        Activation::Silu => x * sigmoid(x),
        Activation::Tanh => tanh(x),
        Activation::Sigmoid => sigmoid(x),
        Activation::Identity => x,
    }
}

simd_dispatch! {
    /// `rows[i][j] = act(rows[i][j] + bias[j])` for a row-major matrix with `bias.len()` columns
    /// (no bias when `bias` is empty).
    fn add_bias_activation(rows: &mut [f32], bias: &[f32], act: Activation) {
        if bias.is_empty() {
            match act {
                Activation::Identity => {}
                // One loop per activation so each is vectorised without a branch inside.
                Activation::Gelu => rows.iter_mut().for_each(|x| *x = apply(Activation::Gelu, *x)),
                other => rows.iter_mut().for_each(|x| *x = apply(other, *x)),
            }
            return;
        }
        assert_eq!(rows.len() % bias.len(), 0, "matrix width is not the bias length");
        for row in rows.chunks_exact_mut(bias.len()) {
            match act {
                Activation::Identity => row.iter_mut().zip(bias).for_each(|(x, b)| *x += b),
                Activation::Gelu => row
                    .iter_mut()
                    .zip(bias)
                    .for_each(|(x, b)| *x = apply(Activation::Gelu, *x + b)),
                other => row.iter_mut().zip(bias).for_each(|(x, b)| *x = apply(other, *x + b)),
            }
        }
    }
}

/// Sum of a slice with eight independent accumulators, so that the loop vectorises (a single
/// running `f32` sum cannot be reordered by the compiler).
#[inline(always)]
pub(crate) fn sum(x: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let chunks = x.chunks_exact(8);
    let tail: f32 = chunks.remainder().iter().sum();
    for c in chunks {
        for (a, v) in acc.iter_mut().zip(c) {
            *a += v;
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Maximum of a slice, vectorisable (eight lanes); `-inf` for an empty slice.
#[inline(always)]
pub(crate) fn max(x: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; 8];
    let chunks = x.chunks_exact(8);
    let tail = chunks
        .remainder()
        .iter()
        .fold(f32::NEG_INFINITY, |m, &v| if v > m { v } else { m });
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a = if v > *a { v } else { *a };
        }
    }
    acc.iter().fold(tail, |m, &v| if v > m { v } else { m })
}

simd_dispatch! {
    /// `grad[i] *= Φ(x[i]) + x[i]·φ(x[i])`: the derivative of the exact GELU.
    fn gelu_erf_backward(x: &[f32], grad: &mut [f32]) {
        assert_eq!(x.len(), grad.len(), "input and gradient differ in length");
        const INV_SQRT_2PI: f32 = 0.398_942_3;
        for (g, &v) in grad.iter_mut().zip(x) {
            let cdf = 0.5 * (1.0 + erf(v * std::f32::consts::FRAC_1_SQRT_2));
            let pdf = INV_SQRT_2PI * exp(-0.5 * v * v);
            *g *= cdf + v * pdf;
        }
    }
}

simd_dispatch! {
    /// `gate[i] = act(gate[i]) * up[i]`: the gated MLP activation (GeGLU, SwiGLU).
    fn gated_activation(gate: &mut [f32], up: &[f32], act: Activation) {
        assert_eq!(gate.len(), up.len(), "gate and up differ in length");
        // One loop per activation so each is vectorised without a branch inside.
        match act {
            Activation::GeluTanh => gate
                .iter_mut()
                .zip(up)
                .for_each(|(g, &u)| *g = apply(Activation::GeluTanh, *g) * u),
            other => gate
                .iter_mut()
                .zip(up)
                .for_each(|(g, &u)| *g = apply(other, *g) * u),
        }
    }
}

simd_dispatch! {
    /// Softmax of every row of length `width`, in place, after multiplying by `scale`.
    fn softmax_rows(rows: &mut [f32], width: usize, scale: f32) {
        assert!(width > 0 && rows.len().is_multiple_of(width), "rows are not a multiple of the width");
        for row in rows.chunks_exact_mut(width) {
            let max = max(row);
            if max == f32::NEG_INFINITY {
                // Every position masked: no weight anywhere (transformers gives NaN or uniform
                // weights here depending on the mask value; a zero context is the sane answer).
                row.fill(0.0);
                continue;
            }
            let shift = max * scale;
            row.iter_mut().for_each(|x| *x = exp(*x * scale - shift));
            let inv = 1.0 / sum(row);
            row.iter_mut().for_each(|x| *x *= inv);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_accurate() {
        let mut worst = 0.0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let rel = ((exp(x) as f64 - (x as f64).exp()) / (x as f64).exp()).abs();
            worst = worst.max(rel);
            x += 0.001_7;
        }
        assert!(worst < 3e-7, "worst relative error {worst}");
        assert_eq!(exp(-1000.0), exp(-87.0));
        assert!(exp(1000.0).is_finite());
    }

    #[test]
    fn tanh_is_within_a_few_ulps() {
        let mut worst = 0f64;
        let mut x = -12.0f32;
        while x < 12.0 {
            let exact = (x as f64).tanh();
            let ulp = (f32::EPSILON as f64) * exact.abs().max(f32::MIN_POSITIVE as f64);
            worst = worst.max((tanh(x) as f64 - exact).abs() / ulp);
            x += 0.000_37;
        }
        assert!(worst <= 4.0, "worst error {worst} ulp");
        assert_eq!(tanh(0.0), 0.0);
        assert_eq!(tanh(1e-30), 1e-30);
        assert_eq!(tanh(f32::INFINITY), 1.0);
        assert_eq!(tanh(-1e6), -1.0);
    }

    #[test]
    fn gelu_backward_is_the_derivative() {
        // |x| <= 4, where the f64 series below is exact to well under the tolerance.
        let x: Vec<f32> = (-40..=40).map(|i| i as f32 * 0.1).collect();
        let mut grad = vec![2.0f32; x.len()];
        gelu_erf_backward(&x, &mut grad);
        for (&v, &g) in x.iter().zip(&grad) {
            let v = v as f64;
            let cdf = 0.5 * (1.0 + erf64(v / std::f64::consts::SQRT_2));
            let pdf = (-0.5 * v * v).exp() / (2.0 * std::f64::consts::PI).sqrt();
            let want = 2.0 * (cdf + v * pdf);
            assert!((g as f64 - want).abs() < 2e-6, "gelu'({v}): {g} vs {want}");
        }
    }

    /// `erf` in f64 by its Maclaurin series (accurate for `|x| <= 3`).
    fn erf64(x: f64) -> f64 {
        let mut sum = 0f64;
        let mut term = x;
        let mut n = 0f64;
        while term.abs() > 1e-17 * sum.abs().max(1e-300) || n < 3.0 {
            sum += term / (2.0 * n + 1.0);
            n += 1.0;
            term *= -x * x / n;
            if n > 400.0 {
                break;
            }
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    }

    #[test]
    fn gated_activation_multiplies_the_activated_gate() {
        let mut gate = vec![1.0f32, -2.0, 0.3];
        let up = [3.0f32, 0.5, -1.0];
        let want: Vec<f32> = gate
            .iter()
            .zip(&up)
            .map(|(&g, &u)| apply(Activation::GeluTanh, g) * u)
            .collect();
        gated_activation(&mut gate, &up, Activation::GeluTanh);
        assert_eq!(gate, want);
    }

    #[test]
    fn erf_and_tanh_are_accurate() {
        let mut x = -6.0f32;
        while x < 6.0 {
            let e = erf(x) as f64 - libm_erf(x as f64);
            assert!(e.abs() < 5e-7, "erf({x}) off by {e}");
            let t = tanh(x) as f64 - (x as f64).tanh();
            assert!(t.abs() < 1e-6, "tanh({x}) off by {t}");
            x += 0.000_9;
        }
    }

    // erf in f64 by its Taylor / continued-fraction forms, precise enough to check f32 kernels.
    fn libm_erf(x: f64) -> f64 {
        if x.abs() < 3.0 {
            let mut sum = 0.0;
            let mut term = x;
            let mut n = 0.0;
            while term.abs() > 1e-17 {
                sum += term / (2.0 * n + 1.0);
                n += 1.0;
                term *= -x * x / n;
            }
            sum * 2.0 / std::f64::consts::PI.sqrt()
        } else {
            // erfc by a continued fraction for large |x|
            let t = x.abs();
            let mut f = 0.0;
            for k in (1..200).rev() {
                f = (k as f64 / 2.0) / (t + f);
            }
            let erfc = (-t * t).exp() / std::f64::consts::PI.sqrt() / (t + f);
            x.signum() * (1.0 - erfc)
        }
    }

    #[test]
    fn softmax_rows_sum_to_one_and_handle_masks() {
        let mut rows = vec![
            1.0,
            2.0,
            3.0,
            f32::NEG_INFINITY,
            f32::NEG_INFINITY,
            f32::NEG_INFINITY,
        ];
        softmax_rows(&mut rows, 3, 1.0);
        let sum: f32 = rows[..3].iter().sum();
        assert!((sum - 1.0).abs() < 1e-6);
        assert!((rows[2] - 0.665_240_9).abs() < 1e-6);
        assert_eq!(&rows[3..], &[0.0, 0.0, 0.0]);
    }

    #[test]
    fn bias_activation_matches_scalar_formulas() {
        let mut rows = vec![-1.0, 0.5, 2.0, -3.0];
        add_bias_activation(&mut rows, &[0.5, -0.5], Activation::Gelu);
        let gelu = |x: f64| 0.5 * x * (1.0 + libm_erf(x / 2f64.sqrt()));
        for (got, x) in rows.iter().zip([-0.5, 0.0, 2.5, -3.5]) {
            assert!((*got as f64 - gelu(x)).abs() < 1e-6);
        }
    }
}
