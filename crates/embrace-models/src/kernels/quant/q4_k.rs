//! `Q4_K` weights: super-blocks of 256 4-bit integers `q` in eight sub-blocks of 32, each with a
//! 6-bit scale `s` and minimum `m`, under f16 `d` and `dmin`: `w = d·s·q - dmin·m`. Summed as
//! llama.cpp's repacked `q4_K_8x8_q8_K` kernels sum them (see [`super::super_blocks`]).

use super::f16_at;
use super::super_blocks::{QK_K, SuperBlockFormat};

/// One super-block, its scales and minimums unpacked.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BlockQ4K {
    d: f32,
    dmin: f32,
    scales: [u8; 8],
    mins: [u8; 8],
    /// Values 64g..64g+31 are the low nibbles of bytes 32g..32g+31, values 64g+32.. the high ones.
    qs: [u8; 128],
}

impl SuperBlockFormat for BlockQ4K {
    const BYTES: usize = 144;
    const HAS_MINS: bool = true;
    const OFFSET_32: bool = false;
    const REPACKED: bool = true;
    #[cfg(test)]
    const F16_FIELDS: &'static [usize] = &[0, 2];

    fn parse(b: &[u8]) -> Self {
        // Twelve bytes of 6-bit scales and minimums (ggml's `get_scale_min_k4`).
        let packed = &b[4..16];
        let mut scales = [0u8; 8];
        let mut mins = [0u8; 8];
        for j in 0..8 {
            (scales[j], mins[j]) = if j < 4 {
                (packed[j] & 63, packed[j + 4] & 63)
            } else {
                (
                    (packed[j + 4] & 0x0f) | ((packed[j - 4] >> 6) << 4),
                    (packed[j + 4] >> 4) | ((packed[j] >> 6) << 4),
                )
            };
        }
        let mut qs = [0u8; 128];
        qs.copy_from_slice(&b[16..144]);
        Self {
            d: f16_at(b, 0),
            dmin: f16_at(b, 2),
            scales,
            mins,
            qs,
        }
    }

    fn d(&self) -> f32 {
        self.d
    }

    fn dmin(&self) -> f32 {
        self.dmin
    }

    fn min(&self, c: usize) -> i32 {
        self.mins[c] as i32
    }

    fn value(&self, j: usize) -> i32 {
        let byte = self.qs[(j / 64) * 32 + j % 32];
        (if j % 64 < 32 { byte & 0x0f } else { byte >> 4 }) as i32
    }

    fn scale_of(&self, j: usize) -> i32 {
        self.scales[j / 32] as i32
    }

    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    #[allow(unsafe_code)]
    unsafe fn mins(&self) -> std::arch::x86_64::__m128i {
        use std::arch::x86_64::*;
        // SAFETY: `mins` is 8 bytes; the load reads exactly those (SSE4.1 comes with AVX2).
        unsafe { _mm_cvtepu8_epi16(_mm_loadl_epi64(self.mins.as_ptr().cast())) }
    }

    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    #[allow(unsafe_code)]
    unsafe fn chunk(&self, c: usize) -> std::arch::x86_64::__m256i {
        use std::arch::x86_64::*;
        let bytes = &self.qs[(c / 2) * 32..(c / 2) * 32 + 32];
        // SAFETY: `bytes` is 32 bytes; the caller guarantees AVX2.
        unsafe {
            let q = _mm256_loadu_si256(bytes.as_ptr().cast());
            let q = if c.is_multiple_of(2) {
                q
            } else {
                _mm256_srli_epi16(q, 4)
            };
            _mm256_and_si256(q, _mm256_set1_epi8(0x0f))
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    #[allow(unsafe_code)]
    unsafe fn chunk_scales(&self, c: usize) -> std::arch::x86_64::__m256i {
        // SAFETY: the caller guarantees AVX2.
        unsafe { std::arch::x86_64::_mm256_set1_epi16(self.scales[c] as i16) }
    }

    fn dequantize(&self, out: &mut [f32]) {
        for (j, out) in out.iter_mut().enumerate().take(QK_K) {
            let c = j / 32;
            let d = self.d * self.scales[c] as f32;
            let m = self.dmin * self.mins[c] as f32;
            *out = d * self.value(j) as f32 - m;
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn kernels_agree_and_match_the_dense_product() {
        super::super::super_blocks::test_support::check_format::<super::BlockQ4K>(
            5,
            candle_core::quantized::GgmlDType::Q4K,
        );
    }
}
