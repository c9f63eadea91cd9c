//! `Q8_0` weights: 32 signed bytes with an f16 scale `d`, against `Q8_0` activations: per
//! block `d·d'·Σ q·a` (`ggml_vec_dot_q8_0_q8_0`). candle has an AVX2 kernel for this pair, but
//! it quantizes activations differently from ggml (rounding half away from zero, with `1/d` as
//! the multiplier).

use super::{BlockFormat, QK, f16_at};

/// One weight block.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BlockQ8_0 {
    d: f32,
    qs: [i8; QK],
}

impl BlockFormat for BlockQ8_0 {
    const BYTES: usize = 34;
    const HAS_OFFSET: bool = false;
    #[cfg(test)]
    const F16_FIELDS: &'static [usize] = &[0];

    fn parse(b: &[u8]) -> Self {
        let mut qs = [0i8; QK];
        for (q, &byte) in qs.iter_mut().zip(&b[2..34]) {
            *q = byte as i8;
        }
        Self {
            d: f16_at(b, 0),
            qs,
        }
    }

    fn scale(&self) -> f32 {
        self.d
    }

    fn value(&self, j: usize) -> i32 {
        self.qs[j] as i32
    }

    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    #[allow(unsafe_code)]
    unsafe fn signed_bytes(&self) -> std::arch::x86_64::__m256i {
        // SAFETY: the caller guarantees AVX2.
        unsafe { super::avx2::load_32(&self.qs) }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn kernels_agree_and_match_the_dense_product() {
        super::super::test_support::check_format::<super::BlockQ8_0>(3);
    }
}
