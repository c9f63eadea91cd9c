//! `Q6_K` weights: super-blocks of 256 6-bit integers `q` in sixteen sub-blocks of 16, each with
//! a signed 8-bit scale `s`, under an f16 `d`: `w = d·s·(q - 32)` (`ggml_vec_dot_q6_K_q8_K`).

use super::f16_at;
use super::super_blocks::{QK_K, SuperBlockFormat};

/// One super-block with its 6-bit integers unpacked to one byte each (76 bytes more than the
/// file's 210, so that a chunk of 32 is one load).
#[derive(Debug, Clone, Copy)]
pub(crate) struct BlockQ6K {
    d: f32,
    scales: [i8; 16],
    q: [u8; QK_K],
}

impl SuperBlockFormat for BlockQ6K {
    const BYTES: usize = 210;
    const HAS_MINS: bool = false;
    const OFFSET_32: bool = true;
    #[cfg(test)]
    const F16_FIELDS: &'static [usize] = &[208];

    /// The file's layout: bytes 0..128 hold the low four bits, 128..192 the high two, then
    /// the sixteen scales and `d`. In each half of 128 values (`h`), value `32t + l` of quarter
    /// `t` has the low (`t` < 2) or high nibble of byte `64h + 32·(t % 2) + l` and bits
    /// `2t..2t+1` of byte `128 + 32h + l`.
    fn parse(b: &[u8]) -> Self {
        let (ql, qh) = (&b[..128], &b[128..192]);
        let mut q = [0u8; QK_K];
        for (j, q) in q.iter_mut().enumerate() {
            let (h, t, l) = (j / 128, (j % 128) / 32, j % 32);
            let low = ql[64 * h + 32 * (t % 2) + l];
            let low = if t < 2 { low & 0x0f } else { low >> 4 };
            let high = (qh[32 * h + l] >> (2 * t)) & 3;
            *q = low | (high << 4);
        }
        let mut scales = [0i8; 16];
        for (s, &byte) in scales.iter_mut().zip(&b[192..208]) {
            *s = byte as i8;
        }
        Self {
            d: f16_at(b, 208),
            scales,
            q,
        }
    }

    fn d(&self) -> f32 {
        self.d
    }

    fn value(&self, j: usize) -> i32 {
        self.q[j] as i32
    }

    fn scale_of(&self, j: usize) -> i32 {
        self.scales[j / 16] as i32
    }

    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    #[allow(unsafe_code)]
    unsafe fn chunk(&self, c: usize) -> std::arch::x86_64::__m256i {
        let bytes = &self.q[32 * c..32 * c + 32];
        // SAFETY: `bytes` is 32 bytes; the caller guarantees AVX2.
        unsafe { std::arch::x86_64::_mm256_loadu_si256(bytes.as_ptr().cast()) }
    }

    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    #[allow(unsafe_code)]
    unsafe fn group_scales(&self) -> std::arch::x86_64::__m256i {
        use std::arch::x86_64::*;
        // SAFETY: `scales` is 16 bytes, read by one load; the caller guarantees AVX2.
        unsafe { _mm256_cvtepi8_epi16(_mm_loadu_si128(self.scales.as_ptr().cast())) }
    }

    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    #[allow(unsafe_code)]
    unsafe fn chunk_scales(&self, c: usize) -> std::arch::x86_64::__m256i {
        use std::arch::x86_64::*;
        // SAFETY: the caller guarantees AVX2.
        unsafe {
            _mm256_set_m128i(
                _mm_set1_epi16(self.scales[2 * c + 1] as i16),
                _mm_set1_epi16(self.scales[2 * c] as i16),
            )
        }
    }

    fn dequantize(&self, out: &mut [f32]) {
        for (j, out) in out.iter_mut().enumerate().take(QK_K) {
            *out = self.d * self.scales[j / 16] as f32 * (self.value(j) - 32) as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn kernels_agree_and_match_the_dense_product() {
        super::super::super_blocks::test_support::check_format::<super::BlockQ6K>(
            9,
            candle_core::quantized::GgmlDType::Q6K,
        );
    }
}
