//! GGUF K-quant weights (`Q4_K`, `Q6_K`) multiplied the way llama.cpp's CPU backend multiplies
//! them on x86-64 with AVX2.
//!
//! K-quants group 256 weights into a super-block: one f16 scale `d` (and for `Q4_K` an f16 `dmin`)
//! and small integer scales per sub-block of 32 (`Q4_K`) or 16 (`Q6_K`). ggml quantizes each
//! activation row to `Q8_K` ([`quantize_q8k`]: one f32 scale per 256 values) and sums integer
//! products per super-block, then turns them into float in one of two ways:
//! - `Q6_K` (`ggml_vec_dot_q6_K_q8_K`): eight 32-bit lanes, lane `k` holding `Σ s·q·a` over the
//!   four values `4k..4k+3` of every 32-value chunk (the lanes of AVX2's `maddubs` + `madd`),
//!   less `32·s·Σa` of the 16-value groups `2k` and `2k + 1` (the offset of 32); per lane one
//!   fused multiply-add by `d·d'`; at the end the lanes in `hsum_float_8` order;
//! - `Q4_K`, which llama.cpp repacks (`q4_K_8x8_q8_K`, see [`SuperBlockFormat::REPACKED`]):
//!   integer totals of the products and of the minimum terms `m·Σa`, each turned into float by
//!   one fused multiply-add per 64 values (its GEMM, activation rows in groups of four) or per
//!   super-block (its GEMV, the rows left over), into two accumulators whose difference is the
//!   result ([`Granularity`]).
//!
//! The integer sums are exact, so the portable and the AVX2 kernels give the same bits (tested
//! for each format), and the same bits as llama.cpp. A prompt's product takes one weight row
//! against eight activation rows, so that each chunk of weights is unpacked once for eight
//! products; a decode step takes the rows one at a time (more rows at once spill AVX2's
//! sixteen registers).
//! Invariants: a matrix holds `rows × cols / 256` blocks (checked when it is read); the
//! activation rows a kernel receives have as many blocks as the weight rows.

use super::{pool, round_small};

/// Values per super-block.
pub(crate) const QK_K: usize = 256;

/// Chunks of 32 values per super-block.
const CHUNKS: usize = QK_K / 32;

/// One super-block of activations (ggml's `block_q8_K`): `qs = round(x / d)`, the sums of the
/// values of each 16-value group (`bsums`) and of each 32-value chunk (the groups in pairs).
#[derive(Debug, Clone, Copy)]
pub(crate) struct BlockQ8K {
    pub(crate) d: f32,
    pub(crate) qs: [i8; QK_K],
    pub(crate) bsums: [i16; QK_K / 16],
    pub(crate) chunk_sums: [i16; CHUNKS],
}

/// One activation row as `Q8_K` blocks (ggml's `quantize_row_q8_K_ref`): the scale comes from the
/// value of largest magnitude `max` (`-127 / max`, so that value becomes -127), rounding to the
/// nearest even integer.
#[allow(unsafe_code)]
pub(crate) fn quantize_q8k(x: &[f32]) -> Vec<BlockQ8K> {
    #[cfg(target_arch = "x86_64")]
    if simd::has_avx2() {
        // SAFETY: the CPU has AVX2 and FMA.
        return quantize_q8k_with(
            x,
            |v| unsafe { simd::largest_magnitude(v) },
            |v, s, q| unsafe { simd::round_q8k(v, s, q) },
        );
    }
    quantize_q8k_portable(x)
}

/// [`quantize_q8k`] one value at a time.
fn quantize_q8k_portable(x: &[f32]) -> Vec<BlockQ8K> {
    quantize_q8k_with(
        x,
        |v| {
            let (mut max, mut amax) = (0f32, 0f32);
            for &x in v {
                if x.abs() > amax {
                    amax = x.abs();
                    max = x;
                }
            }
            max
        },
        |v, iscale, qs| {
            for (q, &x) in qs.iter_mut().zip(v) {
                // |x·iscale| <= 127 (a NaN input gives 0 like the float-to-int cast).
                *q = (round_small(iscale * x) as i32).min(127) as i8;
            }
        },
    )
}

/// [`quantize_q8k`] with its two steps given: `largest` finds a block's value of largest
/// magnitude (the first one on ties, NaNs skipped, 0 when there is none), `round` writes
/// `round(iscale·x)`.
fn quantize_q8k_with(
    x: &[f32],
    largest: impl Fn(&[f32; QK_K]) -> f32,
    round: impl Fn(&[f32; QK_K], f32, &mut [i8; QK_K]),
) -> Vec<BlockQ8K> {
    let (blocks, _) = x.as_chunks::<QK_K>();
    blocks
        .iter()
        .map(|v| {
            let max = largest(v);
            let mut block = BlockQ8K {
                d: 0.0,
                qs: [0; QK_K],
                bsums: [0; QK_K / 16],
                chunk_sums: [0; CHUNKS],
            };
            if max == 0.0 {
                return block;
            }
            let iscale = -127.0 / max;
            round(v, iscale, &mut block.qs);
            for (sum, chunk) in block.chunk_sums.iter_mut().zip(block.qs.chunks_exact(32)) {
                *sum = chunk.iter().map(|&q| q as i16).sum();
            }
            for (sum, group) in block.bsums.iter_mut().zip(block.qs.chunks_exact(16)) {
                *sum = group.iter().map(|&q| q as i16).sum();
            }
            block.d = 1.0 / iscale;
            block
        })
        .collect()
}

/// A K-quant super-block format.
pub(crate) trait SuperBlockFormat: Sized + Send + Sync + std::fmt::Debug + 'static {
    /// Bytes per super-block in a GGUF file.
    const BYTES: usize;
    /// Whether sub-blocks carry minimums (`w = d·s·q - dmin·m`).
    const HAS_MINS: bool;
    /// Whether the stored integers are offset by 32 (`Q6_K`: `w = d·s·(q - 32)`). ggml
    /// multiplies the stored integers and subtracts `32·(s·Σa)` of 16-value groups `2k` and
    /// `2k + 1` from lane `k` ([`offset_lanes`]).
    const OFFSET_32: bool;
    /// Whether llama.cpp repacks this format on x86 CPUs with AVX2 (`Q4_K`, as
    /// `q4_K_8x8_q8_K`), and so sums it its own way: integer totals of the products and of the
    /// minimum terms, each turned into float by one fused multiply-add (by `d·d'`, and by
    /// `dmin·d'` into a second accumulator), the result the difference of the two
    /// accumulators. Its GEMM (activation rows in groups of four) does that per 64 values, its
    /// GEMV (the rows left over, and decode steps) per super-block; see [`Granularity`].
    /// Otherwise the sums are `ggml_vec_dot_*_q8_K`'s eight lanes.
    const REPACKED: bool = false;
    /// Byte positions of the block's f16 fields (tests write sane values there).
    #[cfg(test)]
    const F16_FIELDS: &'static [usize];
    /// One super-block from its `BYTES` bytes.
    fn parse(bytes: &[u8]) -> Self;
    /// The super-block scale `d`.
    fn d(&self) -> f32;
    /// The super-block scale of the minimums (0 without them).
    fn dmin(&self) -> f32 {
        0.0
    }
    /// The minimum of sub-block `c` (0 without them).
    fn min(&self, _c: usize) -> i32 {
        0
    }
    /// The stored integer of value `j` (0..=15 or 0..=63, before any offset).
    fn value(&self, j: usize) -> i32;
    /// The integer scale of value `j`.
    fn scale_of(&self, j: usize) -> i32;

    /// The 32 stored integers of chunk `c` as unsigned bytes.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[cfg(target_arch = "x86_64")]
    #[allow(unsafe_code)]
    unsafe fn chunk(&self, c: usize) -> std::arch::x86_64::__m256i;

    /// The eight sub-block minimums as 16-bit lanes (zeros without minimums).
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[cfg(target_arch = "x86_64")]
    #[allow(unsafe_code)]
    unsafe fn mins(&self) -> std::arch::x86_64::__m128i {
        // SAFETY: SSE2 is part of x86_64.
        unsafe { std::arch::x86_64::_mm_setzero_si128() }
    }

    /// The scales of the sixteen 16-value groups as 16-bit lanes (formats offset by 32).
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[cfg(target_arch = "x86_64")]
    #[allow(unsafe_code)]
    unsafe fn group_scales(&self) -> std::arch::x86_64::__m256i {
        let scales: [i16; 16] = std::array::from_fn(|g| self.scale_of(16 * g) as i16);
        // SAFETY: `scales` is sixteen i16; the caller guarantees AVX2.
        unsafe { std::arch::x86_64::_mm256_loadu_si256(scales.as_ptr().cast()) }
    }

    /// The scales of chunk `c` as sixteen 16-bit lanes (lanes 0-7 scale values 0-15 of the
    /// chunk, lanes 8-15 values 16-31).
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[cfg(target_arch = "x86_64")]
    #[allow(unsafe_code)]
    unsafe fn chunk_scales(&self, c: usize) -> std::arch::x86_64::__m256i;

    /// The super-block's weights as ggml's `dequantize_row_*` computes them.
    fn dequantize(&self, out: &mut [f32]);
}

/// The eight integer lanes and four minimum lanes of one super-block product, portably.
fn lanes_portable<B: SuperBlockFormat>(w: &B, a: &BlockQ8K) -> ([i32; 8], [i32; 4]) {
    let mut lanes = [0i32; 8];
    for (j, &q) in a.qs.iter().enumerate() {
        lanes[(j % 32) / 4] += w.scale_of(j) * w.value(j) * q as i32;
    }
    if B::OFFSET_32 {
        for (lane, offset) in lanes.iter_mut().zip(offset_lanes(w, a)) {
            *lane -= offset;
        }
    }
    let mut mins = [0i32; 4];
    if B::HAS_MINS {
        for (c, &s) in a.chunk_sums.iter().enumerate() {
            mins[c / 2] += w.min(c) * s as i32;
        }
    }
    (lanes, mins)
}

/// The offset terms of a format offset by 32, per lane: `32·(s_2k·Σa_2k + s_2k+1·Σa_2k+1)`
/// over the 16-value groups `2k`, `2k + 1` (ggml's `q8sclsub`).
fn offset_lanes<B: SuperBlockFormat>(w: &B, a: &BlockQ8K) -> [i32; 8] {
    std::array::from_fn(|k| {
        let g = |i: usize| w.scale_of(16 * i) * a.bsums[i] as i32;
        32 * (g(2 * k) + g(2 * k + 1))
    })
}

/// How often a repacked format's integer totals become float ([`SuperBlockFormat::REPACKED`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Granularity {
    /// Per 64 values (llama.cpp's GEMM, for activation rows in groups of four).
    Pairs,
    /// Per super-block of 256 values (its GEMV).
    SuperBlock,
}

/// The integer totals of one repacked super-block product per 64 values: the products
/// `Σ s·q·a` and the minimum terms `Σ m·Σa`.
fn pair_totals_portable<B: SuperBlockFormat>(w: &B, a: &BlockQ8K) -> ([i32; 4], [i32; 4]) {
    let mut totals = [0i32; 4];
    for (j, &q) in a.qs.iter().enumerate() {
        totals[j / 64] += w.scale_of(j) * w.value(j) * q as i32;
    }
    (totals, min_pair_totals(w, a))
}

/// The minimum terms `m·Σa` of a super-block per 64 values (two sub-blocks).
fn min_pair_totals<B: SuperBlockFormat>(w: &B, a: &BlockQ8K) -> [i32; 4] {
    let mut mins = [0i32; 4];
    for (c, &sum) in a.chunk_sums.iter().enumerate() {
        mins[c / 2] += w.min(c) * sum as i32;
    }
    mins
}

/// The float steps after the integer lanes, in ggml's order (for a repacked format: the totals
/// and the minimums' totals, see [`SuperBlockFormat::REPACKED`]).
#[derive(Clone, Copy)]
struct Accumulator {
    lanes: [f32; 8],
    mins: [f32; 4],
    total: f32,
    min_total: f32,
}

impl Accumulator {
    const ZERO: Self = Self {
        lanes: [0.0; 8],
        mins: [0.0; 4],
        total: 0.0,
        min_total: 0.0,
    };

    fn add<B: SuperBlockFormat>(&mut self, w: &B, da: f32, lanes: [i32; 8], mins: [i32; 4]) {
        let d = da * w.d();
        for (acc, l) in self.lanes.iter_mut().zip(lanes) {
            *acc = d.mul_add(l as f32, *acc);
        }
        if B::HAS_MINS {
            let dmin = -da * w.dmin();
            for (acc, m) in self.mins.iter_mut().zip(mins) {
                *acc = dmin.mul_add(m as f32, *acc);
            }
        }
    }

    /// One super-block of a repacked format from its integer totals per 64 values.
    fn add_totals<B: SuperBlockFormat>(
        &mut self,
        w: &B,
        da: f32,
        totals: [i32; 4],
        mins: [i32; 4],
        granularity: Granularity,
    ) {
        let (d, dmin) = (w.d() * da, w.dmin() * da);
        match granularity {
            Granularity::Pairs => {
                for (t, m) in totals.into_iter().zip(mins) {
                    self.total = (t as f32).mul_add(d, self.total);
                    self.min_total = (m as f32).mul_add(dmin, self.min_total);
                }
            }
            Granularity::SuperBlock => {
                let (t, m): (i32, i32) = (totals.iter().sum(), mins.iter().sum());
                self.total = (t as f32).mul_add(d, self.total);
                self.min_total = (m as f32).mul_add(dmin, self.min_total);
            }
        }
    }

    fn finish<B: SuperBlockFormat>(&self) -> f32 {
        if B::REPACKED {
            return self.total - self.min_total;
        }
        let l = &self.lanes;
        let m = &self.mins;
        let lanes = ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]));
        lanes + ((m[0] + m[2]) + (m[1] + m[3]))
    }
}

/// The portable product of one weight row with one activation row.
pub(crate) fn dot_portable<B: SuperBlockFormat>(
    w: &[B],
    a: &[BlockQ8K],
    granularity: Granularity,
) -> f32 {
    let mut acc = Accumulator::ZERO;
    for (wb, ab) in w.iter().zip(a) {
        if B::REPACKED {
            let (totals, mins) = pair_totals_portable(wb, ab);
            acc.add_totals(wb, ab.d, totals, mins, granularity);
        } else {
            let (lanes, mins) = lanes_portable(wb, ab);
            acc.add(wb, ab.d, lanes, mins);
        }
    }
    acc.finish::<B>()
}

/// `R` weight rows times `N` activation rows: `out[i][j]` is exactly the one-row product.
type ProductsFn<B, const R: usize, const N: usize> =
    fn([&[B]; R], [&[BlockQ8K]; N], Granularity) -> [[f32; N]; R];

/// Activation rows per call of the prompt kernel.
const TILE_ROWS: usize = 8;

/// The activation side of a repacked product over [`TILE_ROWS`] activation rows, per
/// super-block: the rows' scales `d'`, and per pair of chunks each row's two chunk sums `Σa` as
/// the i32 word that one `madd` with the two minimums turns into the pair's minimum term. It is
/// the same for every weight row, so a product prepares it once per tile. The rows' bytes are
/// packed too, chunk by chunk ([`PackedChunks`]), so that the kernel reads one aligned stream.
pub(crate) struct TileSide {
    scales: Vec<[f32; TILE_ROWS]>,
    pair_sums: Vec<[[i32; TILE_ROWS]; CHUNKS / 2]>,
    qs: Vec<PackedChunks>,
}

/// One super-block of [`TILE_ROWS`] activation rows: chunk `c` of row `j` at `[c][j]`.
#[derive(Clone, Copy)]
#[repr(C, align(32))]
struct PackedChunks([[[i8; 32]; TILE_ROWS]; CHUNKS]);

impl TileSide {
    fn new(a: [&[BlockQ8K]; TILE_ROWS]) -> Self {
        let blocks = a.iter().map(|a| a.len()).min().unwrap_or(0);
        let scales = (0..blocks)
            .map(|b| std::array::from_fn(|j| a[j][b].d))
            .collect();
        let pair_sums = (0..blocks)
            .map(|b| {
                std::array::from_fn(|p| {
                    std::array::from_fn(|j| {
                        let cs = &a[j][b].chunk_sums;
                        (cs[2 * p] as u16 as i32) | ((cs[2 * p + 1] as u16 as i32) << 16)
                    })
                })
            })
            .collect();
        let qs = (0..blocks)
            .map(|b| {
                PackedChunks(std::array::from_fn(|c| {
                    std::array::from_fn(|j| {
                        let mut chunk = [0i8; 32];
                        chunk.copy_from_slice(&a[j][b].qs[c * 32..c * 32 + 32]);
                        chunk
                    })
                }))
            })
            .collect();
        Self {
            scales,
            pair_sums,
            qs,
        }
    }
}

/// The kernels this CPU runs.
struct Kernels<B> {
    /// One weight row by one activation row.
    one: ProductsFn<B, 1, 1>,
    /// One weight row by [`TILE_ROWS`] activation rows (prompts).
    tile: ProductsFn<B, 1, TILE_ROWS>,
    /// Whether these are the AVX2 kernels.
    avx2: bool,
}

impl<B: SuperBlockFormat> Kernels<B> {
    fn new() -> Self {
        #[cfg(target_arch = "x86_64")]
        if simd::has_avx2() {
            return Self {
                one: simd::products_avx2::<B, 1, 1>,
                tile: simd::products_avx2::<B, 1, TILE_ROWS>,
                avx2: true,
            };
        }
        Self {
            one: products_portable::<B, 1, 1>,
            tile: products_portable::<B, 1, TILE_ROWS>,
            avx2: false,
        }
    }

    /// The prompt tile of a repacked format with its activation side prepared (only built for
    /// the AVX2 kernels; the same bits as `tile`).
    fn tile_with_side(
        &self,
        w: &[B],
        a: [&[BlockQ8K]; TILE_ROWS],
        side: &TileSide,
        granularity: Granularity,
    ) -> [f32; TILE_ROWS] {
        #[cfg(target_arch = "x86_64")]
        if self.avx2 {
            return simd::tile_repacked_avx2(w, a, side, granularity);
        }
        let _ = side;
        (self.tile)([w], a, granularity)[0]
    }
}

/// [`dot_portable`] for every pair.
fn products_portable<B: SuperBlockFormat, const R: usize, const N: usize>(
    w: [&[B]; R],
    a: [&[BlockQ8K]; N],
    granularity: Granularity,
) -> [[f32; N]; R] {
    w.map(|w| a.map(|a| dot_portable(w, a, granularity)))
}

/// A `[rows, cols]` K-quant weight matrix, row-major.
#[derive(Debug, Clone)]
pub(crate) struct SuperBlockMatrix<B> {
    rows: usize,
    cols: usize,
    blocks: Vec<B>,
}

/// Activation rows multiplied against each weight row before moving to the next.
const ACTIVATION_TILE: usize = 16;

impl<B: SuperBlockFormat> SuperBlockMatrix<B> {
    /// Reads the GGUF super-blocks of a `[rows, cols]` matrix from `reader`, a chunk at a time;
    /// `Ok(None)` when `cols` is not a multiple of 256.
    pub(crate) fn from_reader(
        reader: &mut impl std::io::Read,
        rows: usize,
        cols: usize,
    ) -> std::io::Result<Option<Self>> {
        if !cols.is_multiple_of(QK_K) {
            return Ok(None);
        }
        let blocks = super::read_blocks(reader, rows, cols / QK_K, B::BYTES, B::parse)?;
        Ok(Some(Self { rows, cols, blocks }))
    }

    fn row(&self, o: usize) -> &[B] {
        let per_row = self.cols / QK_K;
        &self.blocks[o * per_row..(o + 1) * per_row]
    }
}

impl<B: SuperBlockFormat> super::QuantLinear for SuperBlockMatrix<B> {
    fn rows(&self) -> usize {
        self.rows
    }

    fn cols(&self) -> usize {
        self.cols
    }

    fn dequantize_row(&self, o: usize, out: &mut [f32]) {
        for (block, out) in self.row(o).iter().zip(out.chunks_exact_mut(QK_K)) {
            block.dequantize(out);
        }
    }

    fn matmul(&self, x: &[f32], n: usize) -> Vec<f32> {
        assert_eq!(
            x.len(),
            n * self.cols,
            "quantized matmul: input is not [n, cols]"
        );
        let activations = super::quantize_rows(x, n, self.cols, quantize_q8k);
        let kernels = Kernels::<B>::new();
        // llama.cpp's repacked GEMM takes the activation rows in groups of four, its GEMV the
        // rest (see `SuperBlockFormat::REPACKED`).
        let grouped = n - n % 4;
        let granularity = |r: usize| {
            if r < grouped {
                Granularity::Pairs
            } else {
                Granularity::SuperBlock
            }
        };
        let rows_per_task = pool::chunk_len(self.rows, 16);
        // A repacked format's prompt tiles share their activation side across weight rows.
        let sides: Vec<TileSide> = if B::REPACKED && kernels.avx2 {
            activations
                .chunks_exact(TILE_ROWS)
                .map(|t| TileSide::new(std::array::from_fn(|j| &t[j][..])))
                .collect()
        } else {
            Vec::new()
        };
        let run = |out: &mut super::TaskOut| {
            let first = out.first;
            // Activation rows in tiles that stay in cache while the task's weight rows pass by.
            for (t, tile) in activations.chunks(ACTIVATION_TILE).enumerate() {
                let base = t * ACTIVATION_TILE;
                for k in 0..out.len {
                    let w = [self.row(first + k)];
                    let mut r = 0;
                    while r + TILE_ROWS <= tile.len()
                        && granularity(base + r) == granularity(base + r + TILE_ROWS - 1)
                    {
                        let a = std::array::from_fn(|j| &tile[r + j][..]);
                        let g = granularity(base + r);
                        let y = match sides.get((base + r) / TILE_ROWS) {
                            Some(side) => kernels.tile_with_side(w[0], a, side, g),
                            None => (kernels.tile)(w, a, g)[0],
                        };
                        out.set_rows(base + r, k, &y);
                        r += TILE_ROWS;
                    }
                    for (j, a) in tile.iter().enumerate().skip(r) {
                        let y = (kernels.one)(w, [a], granularity(base + j))[0][0];
                        out.set(base + j, k, y);
                    }
                }
            }
        };
        super::by_weight_rows(self.rows, n, rows_per_task, run)
    }
}

/// AVX2 kernels.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod simd {
    use std::arch::x86_64::*;

    use super::super::avx2;
    use super::{Accumulator, BlockQ8K, CHUNKS, Granularity, SuperBlockFormat, TileSide};

    pub(super) fn has_avx2() -> bool {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }

    /// The portable search of [`super::quantize_q8k_portable`] with vectors: the largest
    /// magnitude (exact; `max_ps(a, m)` keeps `m` when `a` is NaN), then its first value.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn largest_magnitude(v: &[f32; super::QK_K]) -> f32 {
        let (eights, _) = v.as_chunks::<8>();
        // SAFETY: this function's caller guarantees AVX2.
        let amax = unsafe { avx2::max_magnitude(eights) };
        if amax == 0.0 {
            return 0.0;
        }
        v.iter().copied().find(|x| x.abs() == amax).unwrap_or(0.0)
    }

    /// The portable rounding of [`super::quantize_q8k_portable`], 32 values at a time: the same
    /// multiply, ties to even, NaN products as 0, at most 127 (the saturating packs cannot
    /// clamp anything else: `|x·iscale| <= 127`).
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn round_q8k(
        v: &[f32; super::QK_K],
        iscale: f32,
        qs: &mut [i8; super::QK_K],
    ) {
        let mul = _mm256_set1_ps(iscale);
        let top = _mm256_set1_epi32(127);
        let (inputs, _) = v.as_chunks::<32>();
        let (outputs, _) = qs.as_chunks_mut::<32>();
        for (x, out) in inputs.iter().zip(outputs) {
            // SAFETY (the block): the caller guarantees AVX2; `x` holds 32 floats (`8·k + 8
            // <= 32`) and `out` 32 bytes.
            unsafe {
                let q: [__m256i; 4] = std::array::from_fn(|k| {
                    let x = _mm256_loadu_ps(x.as_ptr().add(8 * k));
                    _mm256_min_epi32(avx2::round_scaled(x, mul), top)
                });
                _mm256_storeu_si256(out.as_mut_ptr().cast(), avx2::pack_bytes(q));
            }
        }
    }

    /// One activation chunk: its 32 bytes.
    #[derive(Clone, Copy)]
    struct Chunk {
        qs: __m256i,
    }

    /// Loads chunk `c` of an activation block.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn activations<B: SuperBlockFormat>(a: &BlockQ8K, c: usize) -> Chunk {
        let bytes = &a.qs[c * 32..c * 32 + 32];
        // SAFETY: `bytes` is 32 bytes; the unaligned load reads exactly those.
        unsafe {
            Chunk {
                qs: _mm256_loadu_si256(bytes.as_ptr().cast()),
            }
        }
    }

    /// One chunk's products added to the lanes: pairwise `q·a` with `maddubs`, times the scales
    /// and summed in fours with `madd` (ggml's steps; the offset of 32 comes later).
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn add_chunk<B: SuperBlockFormat>(
        lanes: __m256i,
        q: __m256i,
        scales: __m256i,
        a: Chunk,
    ) -> __m256i {
        let p = _mm256_maddubs_epi16(q, a.qs);
        _mm256_add_epi32(lanes, _mm256_madd_epi16(scales, p))
    }

    /// A pair's float accumulators: eight lanes and, for formats with minimums, four more.
    #[derive(Clone, Copy)]
    struct Acc {
        lanes: __m256,
        mins: __m128,
    }

    /// The float steps of one super-block for one pair, from its integer lanes.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn accumulate<B: SuperBlockFormat>(acc: &mut Acc, w: &B, a: &BlockQ8K, lanes: __m256i) {
        let d = _mm256_set1_ps(a.d * w.d());
        acc.lanes = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(lanes), acc.lanes);
        if B::HAS_MINS {
            // SAFETY: `chunk_sums` is eight i16; the unaligned load reads exactly those.
            let sums = unsafe { _mm_loadu_si128(a.chunk_sums.as_ptr().cast()) };
            // SAFETY: this function's caller guarantees AVX2.
            let prod = _mm_madd_epi16(unsafe { w.mins() }, sums);
            let dmin = _mm_set1_ps(-a.d * w.dmin());
            acc.mins = _mm_fmadd_ps(dmin, _mm_cvtepi32_ps(prod), acc.mins);
        }
    }

    /// The pair's result in ggml's order.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn finish<B: SuperBlockFormat>(acc: Acc) -> f32 {
        let mut out = Accumulator::ZERO;
        // SAFETY: `lanes` holds eight f32 and `mins` four.
        unsafe {
            _mm256_storeu_ps(out.lanes.as_mut_ptr(), acc.lanes);
            _mm_storeu_ps(out.mins.as_mut_ptr(), acc.mins);
        }
        out.finish::<B>()
    }

    /// `R × N` products with AVX2 (only handed out by `Kernels::new` after checking AVX2 and
    /// FMA).
    pub(super) fn products_avx2<B: SuperBlockFormat, const R: usize, const N: usize>(
        w: [&[B]; R],
        a: [&[BlockQ8K]; N],
        granularity: Granularity,
    ) -> [[f32; N]; R] {
        // SAFETY: `Kernels::new` hands this out only when the CPU has AVX2 and FMA.
        unsafe { products::<B, R, N>(w, a, granularity) }
    }

    /// [`products`] for a repacked format: integer totals per 64 values, then the float steps
    /// of [`Accumulator::add_totals`]. (A prompt's tiles take [`tile_repacked`] with their
    /// prepared side instead, see `Kernels::tile_with_side`.)
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn products_repacked<B: SuperBlockFormat, const R: usize, const N: usize>(
        w: [&[B]; R],
        a: [&[BlockQ8K]; N],
        granularity: Granularity,
    ) -> [[f32; N]; R] {
        let mut acc = [[Accumulator::ZERO; N]; R];
        for b in 0..common_blocks(&w, &a) {
            // Integer lanes per pair of chunks (64 values), folded to four lanes per pair.
            let mut pairs = [[[_mm_setzero_si128(); 4]; N]; R];
            for pair in 0..CHUNKS / 2 {
                // SAFETY: this function's caller guarantees AVX2.
                let lanes = unsafe { chunk_lanes(w, a, b, 2 * pair..2 * pair + 2) };
                for (pairs, lanes) in pairs.iter_mut().zip(&lanes) {
                    for (slots, l) in pairs.iter_mut().zip(lanes) {
                        slots[pair] = _mm_add_epi32(
                            _mm256_castsi256_si128(*l),
                            _mm256_extracti128_si256(*l, 1),
                        );
                    }
                }
            }
            for i in 0..R {
                let wb = &w[i][b];
                for j in 0..N {
                    let ab = &a[j][b];
                    // SAFETY: as above; `chunk_sums` is eight i16, read by one load.
                    let (totals, mins) = unsafe {
                        let sums = _mm_loadu_si128(ab.chunk_sums.as_ptr().cast());
                        (
                            reduce_pairs(pairs[i][j]),
                            lanes_i32x4(_mm_madd_epi16(wb.mins(), sums)),
                        )
                    };
                    acc[i][j].add_totals(wb, ab.d, totals, mins, granularity);
                }
            }
        }
        acc.map(|row| row.map(|acc| acc.finish::<B>()))
    }

    /// [`products_repacked`] for one weight row and eight activation rows, with lane `j` of
    /// every vector belonging to activation row `j`: the same operations in the same order for
    /// each row, so the same bits.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn tile_repacked<B: SuperBlockFormat>(
        w: &[B],
        a: [&[BlockQ8K]; 8],
        side: &TileSide,
        granularity: Granularity,
    ) -> [f32; 8] {
        let blocks = common_blocks(&[w], &a)
            .min(side.scales.len())
            .min(side.qs.len());
        let mut total = _mm256_setzero_ps();
        let mut min_total = _mm256_setzero_ps();
        for (b, wb) in w.iter().enumerate().take(blocks) {
            // SAFETY: `scales[b]` holds eight f32.
            let da = unsafe { _mm256_loadu_ps(side.scales[b].as_ptr()) };
            let d = _mm256_mul_ps(_mm256_set1_ps(wb.d()), da);
            let dmin = _mm256_mul_ps(_mm256_set1_ps(wb.dmin()), da);
            let (mut totals, mut mins) = (_mm256_setzero_si256(), _mm256_setzero_si256());
            for pair in 0..CHUNKS / 2 {
                let packed = &side.qs[b].0;
                // SAFETY: this function's caller guarantees AVX2; `PackedChunks` is 32-byte
                // aligned, and so is each 32-byte chunk in it.
                let [lanes] = unsafe {
                    chunk_lanes_with([w], b, 2 * pair..2 * pair + 2, |j, c| Chunk {
                        qs: _mm256_load_si256(packed[c][j].as_ptr().cast()),
                    })
                };
                // SAFETY: as above.
                let t = unsafe { hsum_8x8(lanes) };
                // The pair's minimum terms: `Σa` of its two chunks (the i16 pair at
                // `chunk_sums[2·pair]`) times the two minimums, by one `madd`.
                let sums = &side.pair_sums[b][pair];
                let m = _mm256_madd_epi16(
                    // SAFETY: `sums` holds eight i32.
                    unsafe { _mm256_loadu_si256(sums.as_ptr().cast()) },
                    _mm256_set1_epi32(wb.min(2 * pair) | (wb.min(2 * pair + 1) << 16)),
                );
                match granularity {
                    Granularity::Pairs => {
                        total = _mm256_fmadd_ps(_mm256_cvtepi32_ps(t), d, total);
                        min_total = _mm256_fmadd_ps(_mm256_cvtepi32_ps(m), dmin, min_total);
                    }
                    Granularity::SuperBlock => {
                        totals = _mm256_add_epi32(totals, t);
                        mins = _mm256_add_epi32(mins, m);
                    }
                }
            }
            if granularity == Granularity::SuperBlock {
                total = _mm256_fmadd_ps(_mm256_cvtepi32_ps(totals), d, total);
                min_total = _mm256_fmadd_ps(_mm256_cvtepi32_ps(mins), dmin, min_total);
            }
        }
        let mut out = [0f32; 8];
        // SAFETY: `out` holds eight f32.
        unsafe { _mm256_storeu_ps(out.as_mut_ptr(), _mm256_sub_ps(total, min_total)) };
        out
    }

    /// [`tile_repacked`] (only handed out by `Kernels::new` after checking AVX2 and FMA).
    pub(super) fn tile_repacked_avx2<B: SuperBlockFormat>(
        w: &[B],
        a: [&[BlockQ8K]; 8],
        side: &TileSide,
        granularity: Granularity,
    ) -> [f32; 8] {
        // SAFETY: `Kernels` calls this only when the CPU has AVX2 and FMA.
        unsafe { tile_repacked::<B>(w, a, side, granularity) }
    }

    /// The blocks every row has (all of them, for well-formed rows).
    fn common_blocks<B>(w: &[&[B]], a: &[&[BlockQ8K]]) -> usize {
        let w = w.iter().map(|w| w.len()).min().unwrap_or(0);
        a.iter().map(|a| a.len()).fold(w, usize::min)
    }

    /// The integer lanes of chunks `chunks` of super-block `b` for every pair of a weight row
    /// and an activation row: [`add_chunk`] chunk after chunk (exact integers).
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn chunk_lanes<B: SuperBlockFormat, const R: usize, const N: usize>(
        w: [&[B]; R],
        a: [&[BlockQ8K]; N],
        b: usize,
        chunks: std::ops::Range<usize>,
    ) -> [[__m256i; N]; R] {
        // SAFETY: this function's caller guarantees AVX2.
        let load = |j: usize, c: usize| unsafe { activations::<B>(&a[j][b], c) };
        // SAFETY: as above.
        unsafe { chunk_lanes_with(w, b, chunks, load) }
    }

    /// [`chunk_lanes`] with activation chunk `c` of row `j` from `load(j, c)`.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn chunk_lanes_with<B: SuperBlockFormat, const R: usize, const N: usize>(
        w: [&[B]; R],
        b: usize,
        chunks: std::ops::Range<usize>,
        load: impl Fn(usize, usize) -> Chunk,
    ) -> [[__m256i; N]; R] {
        let mut lanes = [[_mm256_setzero_si256(); N]; R];
        for c in chunks {
            for (lanes, w) in lanes.iter_mut().zip(&w) {
                // SAFETY (the block): this function's caller guarantees AVX2.
                let (q, s) = unsafe { (w[b].chunk(c), w[b].chunk_scales(c)) };
                for (j, l) in lanes.iter_mut().enumerate() {
                    *l = unsafe { add_chunk::<B>(*l, q, s, load(j, c)) };
                }
            }
        }
        lanes
    }

    /// The totals of eight vectors of eight i32 lanes (exact): lane `j` of the result is the
    /// sum of `v[j]`.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn hsum_8x8(v: [__m256i; 8]) -> __m256i {
        let low = _mm256_hadd_epi32(_mm256_hadd_epi32(v[0], v[1]), _mm256_hadd_epi32(v[2], v[3]));
        let high = _mm256_hadd_epi32(_mm256_hadd_epi32(v[4], v[5]), _mm256_hadd_epi32(v[6], v[7]));
        _mm256_add_epi32(
            _mm256_permute2x128_si256(low, high, 0x20),
            _mm256_permute2x128_si256(low, high, 0x31),
        )
    }

    /// The totals of four vectors of four i32 lanes (exact), by horizontal adds.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn reduce_pairs(v: [__m128i; 4]) -> [i32; 4] {
        let totals = _mm_hadd_epi32(_mm_hadd_epi32(v[0], v[1]), _mm_hadd_epi32(v[2], v[3]));
        // SAFETY: this function's caller guarantees AVX2.
        unsafe { lanes_i32x4(totals) }
    }

    /// The four i32 lanes of `v`.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn lanes_i32x4(v: __m128i) -> [i32; 4] {
        let mut ints = [0i32; 4];
        // SAFETY: `ints` holds four i32.
        unsafe { _mm_storeu_si128(ints.as_mut_ptr().cast(), v) };
        ints
    }

    /// See [`products_avx2`].
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn products<B: SuperBlockFormat, const R: usize, const N: usize>(
        w: [&[B]; R],
        a: [&[BlockQ8K]; N],
        granularity: Granularity,
    ) -> [[f32; N]; R] {
        if B::REPACKED {
            // SAFETY: this function's caller guarantees AVX2 and FMA.
            return unsafe { products_repacked::<B, R, N>(w, a, granularity) };
        }
        let zero = Acc {
            lanes: _mm256_setzero_ps(),
            mins: _mm_setzero_ps(),
        };
        let mut acc = [[zero; N]; R];
        for b in 0..common_blocks(&w, &a) {
            // SAFETY: this function's caller guarantees AVX2.
            let lanes = unsafe { chunk_lanes(w, a, b, 0..CHUNKS) };
            for i in 0..R {
                for j in 0..N {
                    let (wb, ab) = (&w[i][b], &a[j][b]);
                    let mut l = lanes[i][j];
                    if B::OFFSET_32 {
                        // ggml's `q8sclsub`: 32·(s·Σa) of the 16-value groups, in pairs.
                        // SAFETY: `bsums` is sixteen i16; AVX2 as above.
                        l = unsafe {
                            let sums = _mm256_loadu_si256(ab.bsums.as_ptr().cast());
                            let offsets = _mm256_madd_epi16(sums, wb.group_scales());
                            _mm256_sub_epi32(l, _mm256_slli_epi32(offsets, 5))
                        };
                    }
                    // SAFETY: as above.
                    unsafe { accumulate(&mut acc[i][j], wb, ab, l) };
                }
            }
        }
        // SAFETY: as above.
        acc.map(|row| row.map(|acc| unsafe { finish::<B>(acc) }))
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::super::QuantLinear;
    use super::*;
    use half::f16;

    /// Checks a format's kernels on random blocks: the product is within quantization error of
    /// the dense product of the dequantized weights, every kernel equals the portable one bit
    /// for bit, and wrong sizes are refused.
    pub(crate) fn check_format<B: SuperBlockFormat>(
        seed: u32,
        dtype: candle_core::quantized::GgmlDType,
    ) {
        let (rows, cols, n) = (13, 512, 11);
        let mut state = seed;
        let mut next = || {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            state >> 8
        };
        let mut bytes = Vec::new();
        for _ in 0..rows * cols / QK_K {
            let mut block: Vec<u8> = (0..B::BYTES).map(|_| (next() & 0xff) as u8).collect();
            for &at in B::F16_FIELDS {
                let value = (next() % 1000) as f32 / 1_000_000.0;
                block[at..at + 2].copy_from_slice(&f16::from_f32(value).to_le_bytes());
            }
            bytes.extend(block);
        }
        let w = SuperBlockMatrix::<B>::from_reader(&mut &bytes[..], rows, cols)
            .unwrap()
            .unwrap();
        let mut dense = vec![0f32; rows * cols];
        for (o, row) in dense.chunks_exact_mut(cols).enumerate() {
            w.dequantize_row(o, row);
        }
        // The block layout as candle reads it (an independent reading of ggml's format).
        let candle = candle_core::quantized::ggml_file::qtensor_from_ggml(
            dtype,
            &bytes,
            vec![rows, cols],
            &candle_core::Device::Cpu,
        )
        .unwrap()
        .dequantize(&candle_core::Device::Cpu)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
        for (i, (a, b)) in dense.iter().zip(&candle).enumerate() {
            assert!(
                (a - b).abs() <= 1e-6 * b.abs().max(1e-3),
                "value {i}: {a} vs {b}"
            );
        }
        let x: Vec<f32> = (0..n * cols)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 25.0)
            .collect();
        let y = w.matmul(&x, n);
        // The weights are exact (the reference uses the same dequantized values), so the only
        // error is the activations' rounding: at most half a step, amax / 254, per value.
        let amax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
        for r in 0..n {
            for o in 0..rows {
                let (mut exact, mut bound) = (0f32, 1e-4f32);
                for c in 0..cols {
                    exact += x[r * cols + c] * dense[o * cols + c];
                    bound += dense[o * cols + c].abs() * amax / 254.0 * 1.01;
                }
                let got = y[r * rows + o];
                assert!(
                    (got - exact).abs() <= bound,
                    "{got} vs {exact} (bound {bound})"
                );
            }
        }
        let acts: Vec<Vec<BlockQ8K>> = x.chunks_exact(cols).map(quantize_q8k).collect();
        // n = 11: rows 0-7 are llama.cpp's GEMM rows (groups of four), 8-10 its GEMV rows.
        for r in 0..n {
            let y1 = w.matmul(&x[r * cols..(r + 1) * cols], 1);
            let g = if r < 8 {
                Granularity::Pairs
            } else {
                Granularity::SuperBlock
            };
            for o in 0..rows {
                let portable = dot_portable(w.row(o), &acts[r], g);
                assert_eq!(
                    y[r * rows + o].to_bits(),
                    portable.to_bits(),
                    "row {r}, {o}"
                );
                let one = dot_portable(w.row(o), &acts[r], Granularity::SuperBlock);
                assert_eq!(y1[o].to_bits(), one.to_bits(), "one row {r}, {o}");
            }
        }
        #[cfg(target_arch = "x86_64")]
        if simd::has_avx2() {
            let a = [&acts[0][..], &acts[1], &acts[2], &acts[3]];
            for g in [Granularity::Pairs, Granularity::SuperBlock] {
                let avx2 = simd::products_avx2::<B, 2, 4>([w.row(0), w.row(5)], a, g);
                for (i, o) in [0, 5].into_iter().enumerate() {
                    for j in 0..4 {
                        let want = dot_portable(w.row(o), a[j], g);
                        assert_eq!(avx2[i][j].to_bits(), want.to_bits());
                    }
                }
                let portable = products_portable::<B, 2, 4>([w.row(0), w.row(5)], a, g);
                assert_eq!(portable, avx2);
            }
        }
        assert!(w.matmul(&[], 0).is_empty());
        let short = SuperBlockMatrix::<B>::from_reader(&mut &bytes[1..], rows, cols);
        assert!(short.is_err());
        let odd = SuperBlockMatrix::<B>::from_reader(&mut &bytes[..], rows, cols + 32);
        assert!(odd.unwrap().is_none());
    }

    /// ggml's `Q8_K` rounding: the value of largest magnitude becomes -127, zeros stay zero.
    #[test]
    fn q8k_quantization_follows_ggml() {
        let mut x = vec![0f32; QK_K];
        x[3] = 2.0;
        x[7] = -1.0;
        x[9] = 0.75;
        let b = &quantize_q8k(&x)[0];
        assert_eq!(b.qs[3], -127);
        assert_eq!(b.qs[7], 64); // 63.5 rounds to even
        assert_eq!(b.qs[9], -48); // -47.625
        assert_eq!(b.d, 1.0 / (-127.0 / 2.0));
        assert_eq!(b.chunk_sums[0], -127 + 64 - 48);
        assert_eq!((b.bsums[0], b.bsums[1]), (-127 + 64 - 48, 0));
        let zero = &quantize_q8k(&[0.0; QK_K])[0];
        assert_eq!((zero.d, zero.qs[0], zero.chunk_sums[0]), (0.0, 0, 0));
        // The vector version gives the portable bits, ties of +max and -max and NaN included.
        let mut state = 99u32;
        let mut x: Vec<f32> = (0..QK_K * 8)
            .map(|_| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                ((state >> 8) as f32 / (1u32 << 24) as f32 - 0.5) * 9.0
            })
            .collect();
        x[10] = 20.0;
        x[300] = -20.0;
        x[290] = 20.0;
        x[600] = f32::NAN;
        x[900] = f32::INFINITY;
        x[1024..1280].fill(0.0);
        let simd = quantize_q8k(&x);
        let portable = quantize_q8k_portable(&x);
        for (a, b) in simd.iter().zip(&portable) {
            assert_eq!(a.d.to_bits(), b.d.to_bits());
            assert_eq!((a.qs, a.bsums, a.chunk_sums), (b.qs, b.bsums, b.chunk_sums));
        }
    }
}
