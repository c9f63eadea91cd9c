//! `Q5_0` weights: 32 5-bit integers `q` (4 low bits in nibbles, the fifth bit in a 32-bit
//! mask) with an f16 scale `d` (`w = d·(q - 16)`), against `Q8_0` activations: per block
//! `d·d'·Σ (q - 16)·a` (`ggml_vec_dot_q5_0_q8_0`).

use super::{BlockFormat, f16_at};

/// One weight block.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BlockQ5_0 {
    d: f32,
    /// Bit j is the fifth bit of element j.
    qh: [u8; 4],
    /// Element j < 16 has the low nibble of byte j; element j >= 16 the high nibble of byte j-16.
    qs: [u8; 16],
}

impl BlockFormat for BlockQ5_0 {
    const BYTES: usize = 22;
    const HAS_OFFSET: bool = false;
    #[cfg(test)]
    const F16_FIELDS: &'static [usize] = &[0];

    fn parse(b: &[u8]) -> Self {
        let mut qh = [0u8; 4];
        qh.copy_from_slice(&b[2..6]);
        let mut qs = [0u8; 16];
        qs.copy_from_slice(&b[6..22]);
        Self {
            d: f16_at(b, 0),
            qh,
            qs,
        }
    }

    fn scale(&self) -> f32 {
        self.d
    }

    /// Element j, shifted to `q - 16`.
    fn value(&self, j: usize) -> i32 {
        let low = if j < 16 {
            self.qs[j] & 0x0f
        } else {
            self.qs[j - 16] >> 4
        };
        let high = (u32::from_le_bytes(self.qh) >> j) & 1;
        (low as u32 | (high << 4)) as i32 - 16
    }

    /// The nibbles with `0xF0` or-ed in where the fifth bit is clear, i.e. `q - 16` as signed
    /// bytes (ggml's `bytes_from_bits_32` and `andnot`).
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    #[allow(unsafe_code)]
    unsafe fn signed_bytes(&self) -> std::arch::x86_64::__m256i {
        // SAFETY: the caller guarantees AVX2.
        unsafe { super::avx2::nibbles_with_sign_bits(&self.qs, self.qh) }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn kernels_agree_and_match_the_dense_product() {
        super::super::test_support::check_format::<super::BlockQ5_0>(5);
    }
}
