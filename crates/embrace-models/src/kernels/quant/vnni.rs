//! The prompt-processing product on CPUs with AVX-512 VNNI: two weight rows by four activation
//! rows per call, with `vpdpbusd` summing four byte products per lane in one instruction.
//!
//! `vpdpbusd` multiplies unsigned by signed bytes, so the activations are stored offset by 128
//! ([`BlockU8`]: `a + 128`, always in 1..=255) and the weights keep their signed bytes `w`. Per
//! lane, `Σ w·(a + 128) - 128·Σ w = Σ w·a` exactly in 32-bit integers, so every lane holds the
//! same integer as the AVX2 product's `maddubs` + `madd`, and the float steps after it (convert,
//! one fused multiply-add by `d·d'`, ggml's lane order) are the same: the results are equal bit
//! for bit (tested against the portable product for each format).

#![allow(unsafe_code)]

use std::arch::x86_64::*;

use super::{BlockFormat, BlockQ8, QK, finish};

/// One block of activations with its bytes offset by 128 (`qs[j] = a[j] + 128`) and its scale
/// repeated in eight lanes (one load per product of scales).
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub(crate) struct BlockU8 {
    pub(crate) d8: [f32; 8],
    pub(crate) qs: [u8; QK],
    pub(crate) s: f32,
}

/// Whether this CPU runs the VNNI product (AVX-512 VNNI with 256-bit vectors, AVX2 and FMA).
pub(crate) fn available() -> bool {
    std::arch::is_x86_feature_detected!("avx512vnni")
        && std::arch::is_x86_feature_detected!("avx512vl")
        && std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("fma")
}

/// A row of activation blocks with their bytes offset by 128.
pub(crate) fn offset_binary(row: &[BlockQ8]) -> Vec<BlockU8> {
    row.iter()
        .map(|b| BlockU8 {
            d8: [b.d; 8],
            s: b.s,
            qs: b.qs.map(|q| (q as u8) ^ 0x80),
        })
        .collect()
}

/// Two weight rows times `N` activation rows: `out[i][j]` is exactly the one-row product of
/// weight row `i` with activation row `j`.
///
/// # Safety
/// [`available`] must be true.
#[target_feature(enable = "avx2,fma,avx512vnni,avx512vl")]
pub(crate) unsafe fn dot2xn<B: BlockFormat, const N: usize>(
    w: [&[B]; 2],
    a: [&[BlockU8]; N],
) -> [[f32; N]; 2] {
    let mut acc = [[_mm256_setzero_ps(); N]; 2];
    let mut offsets = [[0f32; N]; 2];
    let blocks = w[0].len().min(w[1].len());
    let blocks = a.iter().fold(blocks, |n, a| n.min(a.len()));
    let c128 = _mm256_set1_epi8(0x80_u8 as i8);
    let zero = _mm256_setzero_si256();
    for b in 0..blocks {
        // SAFETY: the caller guarantees AVX2.
        let (q0, q1) = unsafe { (w[0][b].signed_bytes(), w[1][b].signed_bytes()) };
        // -128·Σw per lane: the correction for the activations' offset.
        let bias0 = _mm256_sub_epi32(zero, _mm256_dpbusd_epi32(zero, c128, q0));
        let bias1 = _mm256_sub_epi32(zero, _mm256_dpbusd_epi32(zero, c128, q1));
        let (d0, d1) = (
            _mm256_set1_ps(w[0][b].scale()),
            _mm256_set1_ps(w[1][b].scale()),
        );
        for j in 0..N {
            let ab = &a[j][b];
            // SAFETY: `qs` is 32 bytes and `d8` 8 floats; the unaligned loads read exactly those.
            let (qa, da) = unsafe {
                (
                    _mm256_loadu_si256(ab.qs.as_ptr().cast()),
                    _mm256_loadu_ps(ab.d8.as_ptr()),
                )
            };
            let l0 = _mm256_cvtepi32_ps(_mm256_dpbusd_epi32(bias0, qa, q0));
            let l1 = _mm256_cvtepi32_ps(_mm256_dpbusd_epi32(bias1, qa, q1));
            acc[0][j] = _mm256_fmadd_ps(_mm256_mul_ps(d0, da), l0, acc[0][j]);
            acc[1][j] = _mm256_fmadd_ps(_mm256_mul_ps(d1, da), l1, acc[1][j]);
            if B::HAS_OFFSET {
                offsets[0][j] = w[0][b].offset().mul_add(ab.s, offsets[0][j]);
                offsets[1][j] = w[1][b].offset().mul_add(ab.s, offsets[1][j]);
            }
        }
    }
    let mut out = [[0f32; N]; 2];
    for i in 0..2 {
        for j in 0..N {
            let mut lanes = [0f32; 8];
            // SAFETY: `lanes` holds 8 f32.
            unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), acc[i][j]) };
            out[i][j] = finish(lanes, offsets[i][j]);
        }
    }
    out
}
