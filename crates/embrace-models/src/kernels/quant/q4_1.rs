//! `Q4_1` weights: 32 4-bit integers `q` with an f16 scale `d` and offset `m` (`w = d·q + m`),
//! against `Q8_1` activations: per block `d·d'·Σ q·a + m·s`, the `m·s` terms summed apart
//! (`ggml_vec_dot_q4_1_q8_1`).

use super::{BlockFormat, f16_at};

/// One weight block.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BlockQ4_1 {
    d: f32,
    m: f32,
    /// Element j < 16 is the low nibble of byte j; element j >= 16 the high nibble of byte j-16.
    qs: [u8; 16],
}

impl BlockFormat for BlockQ4_1 {
    const BYTES: usize = 20;
    const HAS_OFFSET: bool = true;
    #[cfg(test)]
    const F16_FIELDS: &'static [usize] = &[0, 2];

    fn parse(b: &[u8]) -> Self {
        let mut qs = [0u8; 16];
        qs.copy_from_slice(&b[4..20]);
        Self {
            d: f16_at(b, 0),
            m: f16_at(b, 2),
            qs,
        }
    }

    fn scale(&self) -> f32 {
        self.d
    }

    fn offset(&self) -> f32 {
        self.m
    }

    fn value(&self, j: usize) -> i32 {
        (if j < 16 {
            self.qs[j] & 0x0f
        } else {
            self.qs[j - 16] >> 4
        }) as i32
    }

    /// The nibbles, 0..=15 (ggml multiplies them unsigned; as non-negative signed bytes the
    /// integer products are the same).
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    #[allow(unsafe_code)]
    unsafe fn signed_bytes(&self) -> std::arch::x86_64::__m256i {
        // SAFETY: the caller guarantees AVX2.
        unsafe { super::avx2::nibbles_32(&self.qs) }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn kernels_agree_and_match_the_dense_product() {
        super::super::test_support::check_format::<super::BlockQ4_1>(7);
    }
}
