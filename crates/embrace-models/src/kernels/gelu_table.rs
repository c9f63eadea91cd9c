//! llama.cpp's GELU: the tanh approximation looked up in a table of f16 values.
//!
//! ggml (built with its default `GGML_GELU_FP16`) does not evaluate GELU per value: it rounds
//! the input to f16 and reads `gelu(x)`, itself rounded to f16, from a 65,536-entry table filled
//! once with `0.5·x·(1 + tanh(√(2/π)·x·(1 + 0.044715·x²)))` in f32. Inputs at or below -10 give
//! 0 and inputs at or above 10 pass through (`ggml_vec_gelu_f32`, `ggml_vec_geglu_f32`). GGUF
//! models use this so that their activations are the values llama.cpp computes.

use std::sync::OnceLock;

use half::f16;

const COEF_A: f32 = 0.044_715;
const SQRT_2_OVER_PI: f32 = 0.797_884_6;

/// GELU (tanh approximation) in f32, as ggml's `ggml_gelu_f32` writes it.
fn gelu_f32(x: f32) -> f32 {
    0.5 * x * (1.0 + (SQRT_2_OVER_PI * x * (1.0 + COEF_A * x * x)).tanh())
}

/// `gelu(x)` for every f16 bit pattern `x`, rounded to f16 and widened back to f32.
fn table() -> &'static [f32] {
    static TABLE: OnceLock<Vec<f32>> = OnceLock::new();
    TABLE.get_or_init(|| {
        (0..=u16::MAX)
            .map(|bits| f16::from_f32(gelu_f32(f16::from_bits(bits).to_f32())).to_f32())
            .collect()
    })
}

/// One value through the table.
#[inline]
fn lookup(table: &[f32], x: f32) -> f32 {
    if x <= -10.0 {
        0.0
    } else if x >= 10.0 {
        x
    } else {
        table[f16::from_f32(x).to_bits() as usize]
    }
}

/// `gelu(x[i])`, in place.
pub(crate) fn gelu_in_place(x: &mut [f32]) {
    let table = table();
    for v in x.iter_mut() {
        *v = lookup(table, *v);
    }
}

/// `gelu(gate[i]) · up[i]`, written over `gate`.
pub(crate) fn geglu_in_place(gate: &mut [f32], up: &[f32]) {
    assert_eq!(gate.len(), up.len(), "gate and up differ in length");
    let table = table();
    #[cfg(target_arch = "x86_64")]
    if simd::available() {
        // SAFETY: the CPU has AVX2 and F16C.
        #[allow(unsafe_code)]
        unsafe {
            simd::geglu(table, gate, up)
        };
        return;
    }
    geglu_portable(table, gate, up);
}

/// [`geglu_in_place`] one value at a time.
fn geglu_portable(table: &[f32], gate: &mut [f32], up: &[f32]) {
    for (g, &u) in gate.iter_mut().zip(up) {
        *g = lookup(table, *g) * u;
    }
}

/// [`geglu_in_place`] eight values at a time: the f16 roundings of eight inputs in one
/// instruction (round to nearest even, as `f16::from_f32`), the eight table reads, the two
/// bounds as blends; the same values as [`lookup`] one by one.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod simd {
    use std::arch::x86_64::*;

    /// Whether this CPU has AVX2 and F16C.
    pub(super) fn available() -> bool {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("f16c")
    }

    /// # Safety
    /// The CPU must support AVX2 and F16C; `table` holds 65,536 values.
    #[target_feature(enable = "avx2,f16c")]
    pub(super) unsafe fn geglu(table: &[f32], gate: &mut [f32], up: &[f32]) {
        let n = gate.len().min(up.len());
        let (gates, _) = gate[..n].as_chunks_mut::<8>();
        let (ups, _) = up[..n].as_chunks::<8>();
        let (low, high) = (_mm256_set1_ps(-10.0), _mm256_set1_ps(10.0));
        for (g, u) in gates.iter_mut().zip(ups) {
            // SAFETY (this block): `g` and `u` hold 8 floats each; `bits` 8 u16; every f16 bit
            // pattern indexes `table`.
            unsafe {
                let x = _mm256_loadu_ps(g.as_ptr());
                let mut bits = [0u16; 8];
                _mm_storeu_si128(
                    bits.as_mut_ptr().cast(),
                    _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(x),
                );
                let looked_up = bits.map(|b| *table.get_unchecked(b as usize));
                let y = _mm256_loadu_ps(looked_up.as_ptr());
                let y = _mm256_blendv_ps(y, _mm256_setzero_ps(), _mm256_cmp_ps(x, low, _CMP_LE_OQ));
                let y = _mm256_blendv_ps(y, x, _mm256_cmp_ps(x, high, _CMP_GE_OQ));
                _mm256_storeu_ps(
                    g.as_mut_ptr(),
                    _mm256_mul_ps(y, _mm256_loadu_ps(u.as_ptr())),
                );
            }
        }
        let done = n - n % 8;
        super::geglu_portable(table, &mut gate[done..n], &up[done..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_f16_roundings_of_the_tanh_approximation_at_f16_inputs() {
        let inputs = [
            -12.0f32, -10.0, -3.0, -0.5, 0.0, 0.1234, 1.0, 2.5, 9.99, 10.0, 11.5,
        ];
        let mut x = inputs.to_vec();
        gelu_in_place(&mut x);
        for (&v, &y) in inputs.iter().zip(&x) {
            let want = if v <= -10.0 {
                0.0
            } else if v >= 10.0 {
                v
            } else {
                f16::from_f32(gelu_f32(f16::from_f32(v).to_f32())).to_f32()
            };
            assert_eq!(y, want, "gelu({v})");
            // Within f16 precision of the exact approximation.
            assert!(
                (y - gelu_f32(v)).abs() <= 2e-3 * v.abs().max(0.01),
                "gelu({v})"
            );
        }
        // The vector path gives the one-by-one values (a length that leaves a remainder).
        let mut state = 7u32;
        let mut gate: Vec<f32> = (0..1003)
            .map(|_| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                ((state >> 8) as f32 / (1u32 << 24) as f32 - 0.5) * 30.0
            })
            .collect();
        gate[..inputs.len()].copy_from_slice(&inputs);
        let up: Vec<f32> = gate.iter().map(|g| 1.5 - g / 7.0).collect();
        let mut portable = gate.clone();
        geglu_portable(table(), &mut portable, &up);
        geglu_in_place(&mut gate, &up);
        assert_eq!(
            gate.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            portable.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
        let mut g = vec![1.0f32, 2.0];
        geglu_in_place(&mut g, &[3.0, -1.0]);
        assert_eq!(
            g,
            [
                3.0 * table()[f16::from_f32(1.0).to_bits() as usize],
                -table()[f16::from_f32(2.0).to_bits() as usize]
            ]
        );
    }
}
