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
    for (g, &u) in gate.iter_mut().zip(up) {
        *g = lookup(table, *g) * u;
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
