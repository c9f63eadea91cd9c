//! GGUF quantized weights multiplied the way llama.cpp (ggml) multiplies them, bit for bit:
//! `Q4_1`, `Q5_0`, `Q8_0` and the K-quants `Q4_K`, `Q6_K` (candle runs some of these as scalar
//! code, and quantizes the activations or sums the products differently from ggml).
//!
//! ggml never dequantizes weights for a product: it quantizes each row of activations to 8-bit
//! blocks of 32 values (`Q8_0`: scale `d' = amax / 127`; `Q8_1` also keeps `s = d'·Σa`) and
//! sums integer products block by block. This module reproduces that arithmetic step by step,
//! so that greedy decoding agrees with llama.cpp on the same file:
//! - activations: `amax / 127` as the scale and `127 / amax` as the multiplier, rounding to the
//!   nearest even integer (`_mm256_round_ps`), f16 fields rounded to nearest even;
//! - per block, eight lanes each hold the integer sum of four neighbouring products and are
//!   accumulated with one fused multiply-add by the product of the two scales; then the lanes
//!   are added pairwise in ggml's order (`hsum_float_8`) and any per-block offset terms last.
//!
//! The K-quants ([`q4_k`], [`q6_k`]), with their super-blocks of 256 values and `Q8_K`
//! activations, have their own kernel family in [`super_blocks`].
//!
//! A format ([`q4_1`], [`q5_0`], [`q8_0`]) only describes its block layout ([`BlockFormat`]);
//! the products are generic: one AVX2 + FMA version, one AVX-512 VNNI version for prompts
//! ([`vnni`]: two weight rows by eight activation rows per call) and one portable version, all
//! giving the same bits (tested for each format). A prompt's rows are packed in groups of eight,
//! block by block ([`Block8`]): one weight row against a group reads one aligned stream, and the
//! eight products of scales are one vector multiply. A decode step (one activation row) takes
//! four weight rows at a time, so that four independent accumulation chains hide the latency of
//! the per-block fused multiply-add. Invariants: a matrix holds `rows × cols / 32` blocks
//! (checked when it is built from the GGUF bytes); inputs are checked against `cols`.

pub(crate) mod q4_1;
pub(crate) mod q4_k;
pub(crate) mod q5_0;
pub(crate) mod q6_k;
pub(crate) mod q8_0;
pub(crate) mod super_blocks;
#[cfg(target_arch = "x86_64")]
mod vnni;

use super::pool;
use half::f16;

/// Values per block, in every format here.
pub(crate) const QK: usize = 32;

/// One block of activations: `Q8_0` uses `d` and `qs`, `Q8_1` also `s`. The f16 fields are
/// kept widened to f32 (exactly).
#[derive(Debug, Clone, Copy)]
pub(crate) struct BlockQ8 {
    pub(crate) d: f32,
    pub(crate) s: f32,
    pub(crate) qs: [i8; QK],
}

/// `x` rounded to the nearest integer, ties to even, for `|x| <= 2^22`: adding and removing
/// `1.5·2^23` leaves no fraction bits, and the addition rounds in the default mode (what
/// `round_ties_even` computes, without a library call on targets lacking `roundps`).
#[inline(always)]
fn round_small(x: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0;
    (x + MAGIC) - MAGIC
}

/// One row of activations as 8-bit blocks (ggml's `quantize_row_q8_0` / `quantize_row_q8_1`).
pub(crate) fn quantize_q8(x: &[f32]) -> Vec<BlockQ8> {
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        return avx2::quantize_q8(x);
    }
    quantize_q8_portable(x)
}

/// [`quantize_q8`] one value at a time.
pub(crate) fn quantize_q8_portable(x: &[f32]) -> Vec<BlockQ8> {
    x.chunks_exact(QK)
        .map(|v| {
            let amax = v
                .iter()
                .fold(0f32, |m, x| if x.abs() > m { x.abs() } else { m });
            let (d, id) = q8_scales(amax);
            let mut qs = [0i8; QK];
            let mut sum = 0i32;
            for (q, &x) in qs.iter_mut().zip(v) {
                // |x·id| <= 127 (a NaN input gives 0 like the float-to-int cast).
                let r = round_small(x * id) as i32;
                sum += r;
                *q = r.clamp(-128, 127) as i8;
            }
            q8_block(d, sum, qs)
        })
        .collect()
}

/// A block's scale `d = amax / 127` and multiplier `id = 127 / amax` (0 for an all-zero block).
#[inline(always)]
fn q8_scales(amax: f32) -> (f32, f32) {
    let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
    (amax / 127.0, id)
}

/// The block with its f16 fields: `d`, and `s = d·Σq`.
#[inline(always)]
fn q8_block(d: f32, sum: i32, qs: [i8; QK]) -> BlockQ8 {
    BlockQ8 {
        d: f16::from_f32(d).to_f32(),
        s: f16::from_f32(d * sum as f32).to_f32(),
        qs,
    }
}

/// The sum of the eight lanes in ggml's `hsum_float_8` order, plus the offset sum.
fn finish(acc: [f32; 8], offsets: f32) -> f32 {
    (((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]))) + offsets
}

/// Reads a little-endian f16 at `bytes[i..i + 2]`, widened to f32.
pub(crate) fn f16_at(bytes: &[u8], i: usize) -> f32 {
    f16::from_le_bytes([bytes[i], bytes[i + 1]]).to_f32()
}

/// Whether the AVX2 + FMA kernels can run here.
fn has_avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The dot product of one weight row with one activation row.
pub(crate) type DotFn<B> = fn(&[B], &[BlockQ8]) -> f32;

/// A weight block format: 32 small integers, a scale and, for some formats, an offset.
pub(crate) trait BlockFormat: Sized + Send + Sync + std::fmt::Debug + 'static {
    /// Bytes per block in a GGUF file.
    const BYTES: usize;
    /// Whether blocks carry an offset `m` (`w = d·q + m`), whose product with the activation
    /// block's `s` is summed apart from the lanes (and the activations are `Q8_1`).
    const HAS_OFFSET: bool;
    /// Byte positions of the block's f16 fields (tests write sane values there).
    #[cfg(test)]
    const F16_FIELDS: &'static [usize];
    /// One block from its `BYTES` bytes.
    fn parse(bytes: &[u8]) -> Self;
    /// The scale `d`.
    fn scale(&self) -> f32;
    /// The offset `m` (0 without one).
    fn offset(&self) -> f32 {
        0.0
    }
    /// Weight `j` as the integer the block products use.
    fn value(&self, j: usize) -> i32;
    /// The 32 integers as signed bytes.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[cfg(target_arch = "x86_64")]
    #[allow(unsafe_code)]
    unsafe fn signed_bytes(&self) -> std::arch::x86_64::__m256i;

    /// The block's 32 weights as ggml's `dequantize_row_*` computes them (`q·d + m` fused, as
    /// compilers contract it).
    fn dequantize(&self, out: &mut [f32]) {
        for (j, out) in out.iter_mut().enumerate().take(QK) {
            let q = self.value(j) as f32;
            *out = if Self::HAS_OFFSET {
                q.mul_add(self.scale(), self.offset())
            } else {
                q * self.scale()
            };
        }
    }
}

/// One weight row with four activation rows: each result is exactly the one-row product.
pub(crate) type Dot4Fn<B> = fn(&[B], [&[BlockQ8]; 4]) -> [f32; 4];

/// [`Dot4Fn`] for eight activation rows (a prompt's tile) packed side by side ([`Block8`]).
pub(crate) type Dot8Fn<B> = fn(&[B], &[Block8]) -> [f32; 8];

/// Block `b` of eight activation rows side by side, so that a prompt tile's product reads one
/// contiguous, aligned stream: the rows' bytes, then their scales `d'` and sums `s` as one
/// vector each (the eight products of scales `d·d'` are one vector multiply).
#[derive(Debug, Clone, Copy)]
#[repr(C, align(32))]
pub(crate) struct Block8 {
    pub(crate) qs: [[i8; QK]; 8],
    pub(crate) d: [f32; 8],
    pub(crate) s: [f32; 8],
}

/// Eight rows of activation blocks (all of the same length) packed block by block.
pub(crate) fn pack8(rows: &[Vec<BlockQ8>]) -> Vec<Block8> {
    let rows: [&Vec<BlockQ8>; 8] = std::array::from_fn(|j| &rows[j]);
    let blocks = rows.iter().map(|r| r.len()).min().unwrap_or(0);
    (0..blocks)
        .map(|b| Block8 {
            qs: rows.map(|r| r[b].qs),
            d: rows.map(|r| r[b].d),
            s: rows.map(|r| r[b].s),
        })
        .collect()
}

/// Four weight rows with one activation row: each result is exactly the one-row product (four
/// independent accumulation chains hide the latency of each block's fused multiply-add).
pub(crate) type DotRows4Fn<B> = fn([&[B]; 4], &[BlockQ8]) -> [f32; 4];

/// The product for this CPU: AVX2 + FMA where available, else the portable one (same bits).
fn dot_fn<B: BlockFormat>() -> DotFn<B> {
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        return avx2::dot::<B>;
    }
    dot_portable::<B>
}

/// [`dot_fn`] for four activation rows at once (the weight blocks are unpacked once).
fn dot4_fn<B: BlockFormat>() -> Dot4Fn<B> {
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        return avx2::dot4::<B>;
    }
    |w, a| a.map(|a| dot_portable(w, a))
}

/// [`dot_fn`] for eight packed activation rows at once (a prompt's tile: each weight block is
/// unpacked once for eight products).
fn dot8_fn<B: BlockFormat>() -> Dot8Fn<B> {
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        return avx2::dot8::<B>;
    }
    dot8_portable::<B>
}

/// [`dot_fn`] for four weight rows at once.
fn dot_rows4_fn<B: BlockFormat>() -> DotRows4Fn<B> {
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        return avx2::dot_rows4::<B>;
    }
    |w, a| w.map(|w| dot_portable(w, a))
}

/// The portable product, in ggml's order: per block, eight lanes of four integer products,
/// each accumulated with one fused multiply-add by `d·d'`; offsets summed apart.
pub(crate) fn dot_portable<B: BlockFormat>(w: &[B], a: &[BlockQ8]) -> f32 {
    dot_portable_blocks(w, a.iter().map(|ab| (ab.d, ab.s, &ab.qs)))
}

/// [`dot_portable`] for eight packed activation rows: the same operations for each row.
pub(crate) fn dot8_portable<B: BlockFormat>(w: &[B], a: &[Block8]) -> [f32; 8] {
    std::array::from_fn(|j| {
        dot_portable_blocks(w, a.iter().map(|ab| (ab.d[j], ab.s[j], &ab.qs[j])))
    })
}

/// [`dot_portable`] over an activation row given block by block as `(d', s, bytes)`.
fn dot_portable_blocks<'a, B: BlockFormat>(
    w: &[B],
    a: impl Iterator<Item = (f32, f32, &'a [i8; QK])>,
) -> f32 {
    let mut acc = [0f32; 8];
    let mut offsets = 0f32;
    for (wb, (da, sa, qs)) in w.iter().zip(a) {
        let d = wb.scale() * da;
        if B::HAS_OFFSET {
            offsets = wb.offset().mul_add(sa, offsets);
        }
        for (lane, acc) in acc.iter_mut().enumerate() {
            let sum: i32 = (lane * 4..lane * 4 + 4)
                .map(|i| wb.value(i) * qs[i] as i32)
                .sum();
            *acc = d.mul_add(sum as f32, *acc);
        }
    }
    finish(acc, offsets)
}

/// Activation rows multiplied against each weight row before moving to the next tile (a
/// multiple of 8, so that the packed groups of eight rows never straddle two tiles).
const ACTIVATION_TILE: usize = 16;

/// A `[rows, cols]` weight matrix in blocks of one format, row-major.
#[derive(Debug, Clone)]
pub(crate) struct QuantMatrix<B> {
    rows: usize,
    cols: usize,
    blocks: Vec<B>,
}

/// A quantized projection, whatever its block format.
pub(crate) trait QuantLinear: std::fmt::Debug + Send + Sync {
    /// Output features.
    fn rows(&self) -> usize;
    /// Input features.
    fn cols(&self) -> usize;
    /// `x · Wᵀ` for `n` input rows (`x` is `[n, cols]`, the result `[n, rows]`).
    fn matmul(&self, x: &[f32], n: usize) -> Vec<f32>;
    /// Row `o` as floats (an embedding lookup), written to `out` (`cols` values).
    fn dequantize_row(&self, o: usize, out: &mut [f32]);
}

impl<B: BlockFormat> QuantMatrix<B> {
    /// [`QuantMatrix::from_reader`] over a byte slice that must hold exactly the matrix; `None`
    /// when the sizes do not fit (cols not a multiple of 32, or a byte count that is not
    /// `rows × cols / 32` blocks).
    #[cfg(test)]
    pub(crate) fn from_gguf_bytes(bytes: &[u8], rows: usize, cols: usize) -> Option<Self> {
        if !cols.is_multiple_of(QK) || bytes.len() != rows.checked_mul(cols / QK)? * B::BYTES {
            return None;
        }
        Self::from_reader(&mut &bytes[..], rows, cols)
            .ok()
            .flatten()
    }

    /// Reads the GGUF blocks of a `[rows, cols]` matrix from `reader`, a chunk at a time (the
    /// file's bytes are never held whole); `Ok(None)` when `cols` is not a multiple of 32.
    pub(crate) fn from_reader(
        reader: &mut impl std::io::Read,
        rows: usize,
        cols: usize,
    ) -> std::io::Result<Option<Self>> {
        if !cols.is_multiple_of(QK) {
            return Ok(None);
        }
        let blocks = read_blocks(reader, rows, cols / QK, B::BYTES, B::parse)?;
        Ok(Some(Self { rows, cols, blocks }))
    }

    fn row(&self, o: usize) -> &[B] {
        let per_row = self.cols / QK;
        &self.blocks[o * per_row..(o + 1) * per_row]
    }
}

/// The `n` rows of `x` (`cols` values each) quantized by `quantize`, a few rows per task on the
/// pool.
pub(crate) fn quantize_rows<T: Send>(
    x: &[f32],
    n: usize,
    cols: usize,
    quantize: impl Fn(&[f32]) -> Vec<T> + Sync,
) -> Vec<Vec<T>> {
    let mut rows: Vec<Vec<T>> = (0..n).map(|_| Vec::new()).collect();
    pool::for_each_chunk_mut(&mut rows, pool::chunk_len(n, 8), |start, part| {
        for (k, row) in part.iter_mut().enumerate() {
            *row = quantize(&x[(start + k) * cols..(start + k + 1) * cols]);
        }
    });
    rows
}

/// The `rows × per_row` blocks of a matrix, `bytes` bytes each, read from `reader` a few
/// thousand at a time (a file's bytes are never held whole) and parsed by `parse`.
pub(crate) fn read_blocks<T>(
    reader: &mut impl std::io::Read,
    rows: usize,
    per_row: usize,
    bytes: usize,
    parse: impl Fn(&[u8]) -> T,
) -> std::io::Result<Vec<T>> {
    let total = rows
        .checked_mul(per_row)
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "matrix too large"))?;
    let batch = (1 << 17) / bytes.max(1);
    let mut blocks = Vec::with_capacity(total);
    let mut chunk = vec![0u8; batch * bytes];
    while blocks.len() < total {
        let n = (total - blocks.len()).min(batch);
        let part = &mut chunk[..n * bytes];
        reader.read_exact(part)?;
        blocks.extend(part.chunks_exact(bytes).map(&parse));
    }
    Ok(blocks)
}

impl<B: BlockFormat> QuantLinear for QuantMatrix<B> {
    fn rows(&self) -> usize {
        self.rows
    }

    fn cols(&self) -> usize {
        self.cols
    }

    fn dequantize_row(&self, o: usize, out: &mut [f32]) {
        for (block, out) in self.row(o).iter().zip(out.chunks_exact_mut(QK)) {
            block.dequantize(out);
        }
    }

    /// Output features are computed in parallel; activation rows go in tiles that stay in
    /// cache while the weight rows pass.
    fn matmul(&self, x: &[f32], n: usize) -> Vec<f32> {
        assert_eq!(
            x.len(),
            n * self.cols,
            "quantized matmul: input is not [n, cols]"
        );
        let activations = quantize_rows(x, n, self.cols, quantize_q8);
        let (dot, dot4, rows4) = (dot_fn::<B>(), dot4_fn::<B>(), dot_rows4_fn::<B>());
        let dot8 = dot8_fn::<B>();
        // A few tasks per thread (on the pool of `kernels::pool`): enough to balance, few enough
        // that scheduling costs nothing next to the products.
        let rows_per_task = pool::chunk_len(self.rows, 16);
        let offset_activations = OffsetActivations::new(&activations);
        // Whole groups of eight rows, packed for `dot8` (not needed where VNNI takes the tiles).
        let mut groups: Vec<Vec<Block8>> = vec![Vec::new(); n / 8];
        if !offset_activations.takes_tiles() {
            pool::for_each_chunk_mut(&mut groups, pool::chunk_len(n / 8, 1), |start, part| {
                for (g, group) in part.iter_mut().enumerate() {
                    let first = (start + g) * 8;
                    *group = pack8(&activations[first..first + 8]);
                }
            });
        }
        let run = |out: &mut TaskOut| {
            let (first, len) = (out.first, out.len);
            if n == 1 {
                // One activation row (a decode step): four weight rows at a time, a quarter of
                // the chunk apart (rows close together run at a third of the speed: the four
                // streams share pages and defeat the prefetcher).
                let a = &activations[0];
                let q = len / 4;
                for k in 0..q {
                    let o = [k, k + q, k + 2 * q, k + 3 * q];
                    let y = rows4(o.map(|o| self.row(first + o)), a);
                    for (o, y) in o.into_iter().zip(y) {
                        out.set(0, o, y);
                    }
                }
                for k in 4 * q..len {
                    out.set(0, k, dot(self.row(first + k), a));
                }
                return;
            }
            // Activation rows in tiles that stay in L1 while the task's weight rows pass by.
            for (t, tile) in activations.chunks(ACTIVATION_TILE).enumerate() {
                let base = t * ACTIVATION_TILE;
                let done = offset_activations.pairs(self, out, base, tile);
                for k in done..len {
                    let w = self.row(first + k);
                    let mut r = 0;
                    while r + 8 <= tile.len() {
                        out.set_rows(base + r, k, &dot8(w, &groups[(base + r) / 8]));
                        r += 8;
                    }
                    while r + 4 <= tile.len() {
                        let four = [&tile[r][..], &tile[r + 1], &tile[r + 2], &tile[r + 3]];
                        out.set_rows(base + r, k, &dot4(w, four));
                        r += 4;
                    }
                    for (j, a) in tile.iter().enumerate().skip(r) {
                        out.set(base + j, k, dot(w, a));
                    }
                }
            }
        };
        by_weight_rows(self.rows, n, rows_per_task, run)
    }
}

/// One task's share of a product: the results of weight rows `first..first + len` for every
/// activation row, `[n][len]` (activation-row major, so that each result row's segment is one
/// contiguous copy into the output).
pub(crate) struct TaskOut<'a> {
    /// The task's first weight row.
    pub(crate) first: usize,
    /// How many weight rows the task owns.
    pub(crate) len: usize,
    values: &'a mut [f32],
}

impl TaskOut<'_> {
    /// The result of activation row `r` with the task's weight row `k`.
    #[inline]
    pub(crate) fn set(&mut self, r: usize, k: usize, y: f32) {
        self.values[r * self.len + k] = y;
    }

    /// The results of activation rows `r..r + ys.len()` with the task's weight row `k`.
    #[inline]
    pub(crate) fn set_rows(&mut self, r: usize, k: usize, ys: &[f32]) {
        for (j, &y) in ys.iter().enumerate() {
            self.set(r + j, k, y);
        }
    }
}

/// The `[n, rows]` product of a matrix of `rows` weight rows with `n` activation rows, computed
/// by tasks that each own `rows_per_task` weight rows: `compute` fills its [`TaskOut`], which
/// the task then copies into its columns of the result while it is still in cache (no
/// weight-major result and no transposition pass that would read it back from memory).
pub(crate) fn by_weight_rows(
    rows: usize,
    n: usize,
    rows_per_task: usize,
    compute: impl Fn(&mut TaskOut) + Sync,
) -> Vec<f32> {
    if n == 0 {
        return Vec::new();
    }
    let rows_per_task = rows_per_task.max(1);
    let mut out = vec![0f32; rows * n];
    if n == 1 {
        // One activation row: each task's values are a chunk of the result.
        pool::for_each_chunk_mut(&mut out, rows_per_task, |first, values| {
            let len = values.len();
            compute(&mut TaskOut { first, len, values });
        });
        return out;
    }
    let result = ColumnWriter::new(&mut out, rows);
    let mut tasks = vec![(); rows.div_ceil(rows_per_task)];
    pool::for_each_chunk_mut(&mut tasks, 1, |task, _| {
        let first = task * rows_per_task;
        let len = rows_per_task.min(rows - first);
        let mut values = vec![0f32; n * len];
        compute(&mut TaskOut {
            first,
            len,
            values: &mut values,
        });
        // SAFETY: tasks own disjoint ranges of weight rows, so no two write the same column.
        #[allow(unsafe_code)]
        unsafe {
            result.write_columns(first, len, &values);
        }
    });
    out
}

/// A `[n, rows]` result whose columns (weight rows) are written by concurrent tasks.
struct ColumnWriter<'a> {
    values: *mut f32,
    len: usize,
    rows: usize,
    _out: std::marker::PhantomData<&'a mut [f32]>,
}

// SAFETY: tasks write through the pointer only to disjoint columns (`write_columns`' contract).
#[allow(unsafe_code)]
unsafe impl Sync for ColumnWriter<'_> {}

impl<'a> ColumnWriter<'a> {
    fn new(out: &'a mut [f32], rows: usize) -> Self {
        Self {
            values: out.as_mut_ptr(),
            len: out.len(),
            rows,
            _out: std::marker::PhantomData,
        }
    }

    /// Writes `values` (`[n][k]` for columns `first..first + k`) into the result, one
    /// contiguous segment per result row.
    ///
    /// # Safety
    /// No other thread may write columns `first..first + k` at the same time.
    #[allow(unsafe_code)]
    unsafe fn write_columns(&self, first: usize, k: usize, values: &[f32]) {
        let n = self.len / self.rows.max(1);
        assert!(
            first + k <= self.rows && values.len() == n * k,
            "columns out of range"
        );
        for (r, segment) in values.chunks_exact(k.max(1)).enumerate().take(n) {
            // SAFETY: `r < n` and `first + k <= rows`, so the segment lies inside row `r` of
            // the result's `n × rows` values, and `segment` (task-local) cannot overlap it;
            // the caller guarantees no concurrent write to these columns.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    segment.as_ptr(),
                    self.values.add(r * self.rows + first),
                    segment.len(),
                )
            };
        }
    }
}

/// The activations offset by 128 for the VNNI product, when this CPU has it and there are at
/// least four rows.
struct OffsetActivations {
    #[cfg(target_arch = "x86_64")]
    rows: Option<Vec<Vec<vnni::BlockU8>>>,
}

impl OffsetActivations {
    fn new(activations: &[Vec<BlockQ8>]) -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            let rows = (activations.len() >= 4 && vnni::available()).then(|| {
                let mut rows = vec![Vec::new(); activations.len()];
                let chunk = pool::chunk_len(rows.len(), 8);
                pool::for_each_chunk_mut(&mut rows, chunk, |start, part| {
                    for (k, row) in part.iter_mut().enumerate() {
                        *row = vnni::offset_binary(&activations[start + k]);
                    }
                });
                rows
            });
            Self { rows }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = activations;
            Self {}
        }
    }

    /// Whether [`OffsetActivations::pairs`] computes whole tiles (this CPU has VNNI and there
    /// are enough rows).
    fn takes_tiles(&self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            self.rows.is_some()
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    }

    /// Computes the activation tile `tile` (rows `base..`) against the chunk's weight rows two at
    /// a time with the VNNI product; returns how many of the chunk's rows are done (0 without
    /// VNNI; an odd last row is left to the caller).
    #[allow(unsafe_code)]
    fn pairs<B: BlockFormat>(
        &self,
        matrix: &QuantMatrix<B>,
        out: &mut TaskOut,
        base: usize,
        tile: &[Vec<BlockQ8>],
    ) -> usize {
        #[cfg(target_arch = "x86_64")]
        if let Some(rows) = &self.rows {
            let dot = dot_fn::<B>();
            let tile_u = &rows[base..base + tile.len()];
            let mut done = 0;
            while done + 2 <= out.len {
                let w = [
                    matrix.row(out.first + done),
                    matrix.row(out.first + done + 1),
                ];
                let mut r = 0;
                // SAFETY (both loops): `rows` is only built when `vnni::available()`.
                while r + 8 <= tile.len() {
                    let y = unsafe { vnni_rows::<B, 8>(w, &tile_u[r..]) };
                    out.set_rows(base + r, done, &y[0]);
                    out.set_rows(base + r, done + 1, &y[1]);
                    r += 8;
                }
                while r + 4 <= tile.len() {
                    let y = unsafe { vnni_rows::<B, 4>(w, &tile_u[r..]) };
                    out.set_rows(base + r, done, &y[0]);
                    out.set_rows(base + r, done + 1, &y[1]);
                    r += 4;
                }
                for (j, a) in tile.iter().enumerate().skip(r) {
                    out.set(base + j, done, dot(w[0], a));
                    out.set(base + j, done + 1, dot(w[1], a));
                }
                done += 2;
            }
            return done;
        }
        let _ = (matrix, out, base, tile);
        0
    }
}

/// Two weight rows against the first `N` activation rows of `tile`.
///
/// # Safety
/// `vnni::available()` must be true.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
unsafe fn vnni_rows<B: BlockFormat, const N: usize>(
    w: [&[B]; 2],
    tile: &[Vec<vnni::BlockU8>],
) -> [[f32; N]; 2] {
    let a: [&[vnni::BlockU8]; N] = std::array::from_fn(|j| &tile[j][..]);
    // SAFETY: the caller guarantees VNNI.
    unsafe { vnni::dot2xn(w, a) }
}

/// AVX2 building blocks shared by the formats.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
pub(crate) mod avx2 {
    use std::arch::x86_64::*;

    use super::{Block8, BlockFormat, BlockQ8, QK, finish, q8_block, q8_scales};

    /// Only handed out by [`super::quantize_q8`] after checking AVX2 and FMA.
    pub(crate) fn quantize_q8(x: &[f32]) -> Vec<BlockQ8> {
        let (blocks, _) = x.as_chunks::<QK>();
        blocks
            .iter()
            // SAFETY: the caller checked AVX2 and FMA.
            .map(|v| unsafe { quantize_block(v) })
            .collect()
    }

    /// [`super::quantize_q8_portable`] for one block, eight values at a time: the largest
    /// magnitude (NaNs skipped, as the portable fold does), one rounding multiply per value,
    /// ties to even, NaN products mapped to 0 like the float-to-int cast; the integers and
    /// their sum are exact, so the bits are the portable ones.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn quantize_block(v: &[f32; QK]) -> BlockQ8 {
        let (eights, _) = v.as_chunks::<8>();
        // SAFETY (this function): the caller guarantees AVX2; `v` holds 32 floats, read as
        // four unaligned vectors; `qs` holds 32 bytes, written by one unaligned store.
        let (d, id) = q8_scales(unsafe { max_magnitude(eights) });
        let mul = _mm256_set1_ps(id);
        let q: [__m256i; 4] = std::array::from_fn(|k| unsafe {
            round_scaled(_mm256_loadu_ps(eights[k].as_ptr()), mul)
        });
        let total = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
        let total = _mm_add_epi32(
            _mm256_castsi256_si128(total),
            _mm256_extracti128_si256(total, 1),
        );
        let total = _mm_add_epi32(total, _mm_unpackhi_epi64(total, total));
        let sum = _mm_cvtsi128_si32(_mm_add_epi32(total, _mm_shuffle_epi32(total, 1)));
        // The saturating packs clamp to -128..=127 like the portable clamp.
        let mut qs = [0i8; QK];
        unsafe { _mm256_storeu_si256(qs.as_mut_ptr().cast(), pack_bytes(q)) };
        q8_block(d, sum, qs)
    }

    /// The largest magnitude among `values` (exact; NaNs are skipped, as `max_ps(a, m)` returns
    /// `m` when `a` is NaN), 0 when there is none.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    pub(crate) unsafe fn max_magnitude(values: &[[f32; 8]]) -> f32 {
        let sign = _mm256_set1_ps(-0.0);
        let m = values.iter().fold(_mm256_setzero_ps(), |m, x| {
            // SAFETY: `x` holds 8 floats.
            let x = unsafe { _mm256_loadu_ps(x.as_ptr()) };
            _mm256_max_ps(_mm256_andnot_ps(sign, x), m)
        });
        let m = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        let m = _mm_max_ps(m, _mm_movehl_ps(m, m));
        _mm_cvtss_f32(_mm_max_ss(m, _mm_movehdup_ps(m)))
    }

    /// `round(x·mul)` as i32, ties to even, a NaN product as 0 (like the float-to-int cast of
    /// the portable code).
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    pub(crate) unsafe fn round_scaled(x: __m256, mul: __m256) -> __m256i {
        let p = _mm256_mul_ps(x, mul);
        let p = _mm256_and_ps(p, _mm256_cmp_ps(p, p, _CMP_ORD_Q));
        _mm256_cvtps_epi32(_mm256_round_ps(
            p,
            _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC,
        ))
    }

    /// Four vectors of eight i32 as 32 bytes in their order, saturated to -128..=127 (the
    /// permute undoes the packs' interleaving of the two 128-bit halves).
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    pub(crate) unsafe fn pack_bytes(q: [__m256i; 4]) -> __m256i {
        let packed = _mm256_packs_epi16(
            _mm256_packs_epi32(q[0], q[1]),
            _mm256_packs_epi32(q[2], q[3]),
        );
        _mm256_permutevar8x32_epi32(packed, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7))
    }

    /// 16 bytes of nibbles as 32 bytes: the low nibbles first, then the high ones (ggml's
    /// `bytes_from_nibbles_32`).
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    pub(crate) unsafe fn nibbles_32(qs: &[u8; 16]) -> __m256i {
        // SAFETY: `qs` is 16 bytes; the unaligned load reads exactly those.
        let low = unsafe { _mm_loadu_si128(qs.as_ptr().cast()) };
        _mm256_and_si256(
            _mm256_set1_epi8(0x0f),
            _mm256_set_m128i(_mm_srli_epi16(low, 4), low),
        )
    }

    /// Q5_0's 32 values as signed bytes `q - 16`: the nibbles, with `0xF0` or-ed in where the
    /// fifth bit (bit j of `qh` for element j) is clear.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    pub(crate) unsafe fn nibbles_with_sign_bits(qs: &[u8; 16], qh: [u8; 4]) -> __m256i {
        // Spread bit j of qh into byte j: 0xFF where set (ggml's `bytes_from_bits_32`).
        let spread = _mm256_shuffle_epi8(
            _mm256_set1_epi32(i32::from_le_bytes(qh)),
            _mm256_set_epi64x(
                0x0303_0303_0303_0303,
                0x0202_0202_0202_0202,
                0x0101_0101_0101_0101,
                0,
            ),
        );
        let set = _mm256_cmpeq_epi8(
            _mm256_or_si256(spread, _mm256_set1_epi64x(0x7fbf_dfef_f7fb_fdfe)),
            _mm256_set1_epi64x(-1),
        );
        let high = _mm256_andnot_si256(set, _mm256_set1_epi8(0xF0_u8 as i8));
        // SAFETY: this function's caller guarantees AVX2.
        _mm256_or_si256(unsafe { nibbles_32(qs) }, high)
    }

    /// Loads 32 activation bytes.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    pub(crate) unsafe fn load_32(qs: &[i8; 32]) -> __m256i {
        // SAFETY: `qs` is 32 bytes; the unaligned load reads exactly those.
        unsafe { _mm256_loadu_si256(qs.as_ptr().cast()) }
    }

    /// Unsigned x signed byte products summed in fours, as floats: lane k sums elements
    /// 4k..4k+3 (`maddubs` pairs cannot saturate: at most 128 * 127 * 2 < 2^15).
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn lanes_us(ax: __m256i, sy: __m256i) -> __m256 {
        let pairs = _mm256_maddubs_epi16(ax, sy);
        _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_set1_epi16(1), pairs))
    }

    /// Signed x signed byte products summed in fours (ggml's `mul_sum_i8_pairs_float`).
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn lanes_ss(x: __m256i, y: __m256i) -> __m256 {
        // SAFETY: this function's caller guarantees AVX2.
        unsafe { lanes_us(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x)) }
    }

    /// Only handed out by `dot_fn` after checking AVX2 and FMA.
    pub(crate) fn dot<B: BlockFormat>(w: &[B], a: &[BlockQ8]) -> f32 {
        // SAFETY: `dot_fn` returns this only when the CPU has AVX2 and FMA.
        unsafe { dot_avx2(w, a) }
    }

    /// [`super::dot_portable`] with AVX2: the same operations in the same order.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn dot_avx2<B: BlockFormat>(w: &[B], a: &[BlockQ8]) -> f32 {
        let mut acc = _mm256_setzero_ps();
        let mut offsets = 0f32;
        for (wb, ab) in w.iter().zip(a) {
            if B::HAS_OFFSET {
                offsets = wb.offset().mul_add(ab.s, offsets);
            }
            // SAFETY: this function's caller guarantees AVX2 and FMA.
            acc = unsafe { block_step(acc, wb.scale(), wb.signed_bytes(), ab) };
        }
        // SAFETY: as above.
        finish(unsafe { lanes(acc) }, offsets)
    }

    /// One block's products added to `acc`: the eight lanes of integer products times
    /// `d·d'`, fused.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn block_step(acc: __m256, d: f32, qx: __m256i, a: &BlockQ8) -> __m256 {
        // SAFETY: this function's caller guarantees AVX2.
        let l = unsafe { lanes_ss(qx, load_32(&a.qs)) };
        _mm256_fmadd_ps(_mm256_set1_ps(d * a.d), l, acc)
    }

    /// [`block_step`] with the activation bytes already loaded.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn block_step_loaded(acc: __m256, d: f32, qx: __m256i, qa: __m256i, da: f32) -> __m256 {
        // SAFETY: this function's caller guarantees AVX2.
        let l = unsafe { lanes_ss(qx, qa) };
        _mm256_fmadd_ps(_mm256_set1_ps(d * da), l, acc)
    }

    /// Only handed out by `dot4_fn` after checking AVX2 and FMA.
    pub(crate) fn dot4<B: BlockFormat>(w: &[B], a: [&[BlockQ8]; 4]) -> [f32; 4] {
        // SAFETY: `dot4_fn` returns this only when the CPU has AVX2 and FMA.
        unsafe { dot4_avx2(w, a) }
    }

    /// Only handed out by `dot8_fn` after checking AVX2 and FMA.
    pub(crate) fn dot8<B: BlockFormat>(w: &[B], a: &[Block8]) -> [f32; 8] {
        // SAFETY: `dot8_fn` returns this only when the CPU has AVX2 and FMA.
        unsafe { dot8_avx2(w, a) }
    }

    /// [`dot_avx2`] for eight packed activation rows: each weight block is unpacked once, the
    /// eight products of scales are one vector multiply, and every pair goes through the same
    /// operations in the same order as the one-row product (a lane-wise multiply or fused
    /// multiply-add rounds exactly like the scalar one).
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn dot8_avx2<B: BlockFormat>(w: &[B], a: &[Block8]) -> [f32; 8] {
        #[repr(C, align(32))]
        struct Scales([f32; 8]);
        let mut acc = [_mm256_setzero_ps(); 8];
        let mut offsets = _mm256_setzero_ps();
        let mut scales = Scales([0.0; 8]);
        for (wb, ab) in w.iter().zip(a) {
            // SAFETY (this block): the caller guarantees AVX2 and FMA; `Block8` and `Scales`
            // are 32-byte aligned, so the aligned loads and stores are in bounds and aligned.
            unsafe {
                if B::HAS_OFFSET {
                    let m = _mm256_set1_ps(wb.offset());
                    offsets = _mm256_fmadd_ps(m, _mm256_load_ps(ab.s.as_ptr()), offsets);
                }
                let qx = wb.signed_bytes();
                let ax = _mm256_sign_epi8(qx, qx);
                let d = _mm256_mul_ps(_mm256_set1_ps(wb.scale()), _mm256_load_ps(ab.d.as_ptr()));
                _mm256_store_ps(scales.0.as_mut_ptr(), d);
                // Each product's scale is broadcast from memory (a load, not a shuffle): the
                // compiler must not turn the store and loads into register shuffles, which
                // compete with the integer products for the vector ports.
                let scale = std::hint::black_box(scales.0.as_ptr());
                for (j, acc) in acc.iter_mut().enumerate() {
                    let qa = _mm256_load_si256(ab.qs[j].as_ptr().cast());
                    let l = lanes_us(ax, _mm256_sign_epi8(qa, qx));
                    *acc = _mm256_fmadd_ps(_mm256_broadcast_ss(&*scale.add(j)), l, *acc);
                }
            }
        }
        // SAFETY: as above.
        let offsets = unsafe { lanes(offsets) };
        // SAFETY: as above.
        std::array::from_fn(|j| finish(unsafe { lanes(acc[j]) }, offsets[j]))
    }

    /// [`dot_avx2`] for four activation rows: each weight block is unpacked once; every pair
    /// goes through the same operations in the same order as the one-row product.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn dot4_avx2<B: BlockFormat>(w: &[B], a: [&[BlockQ8]; 4]) -> [f32; 4] {
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut offsets = [0f32; 4];
        let blocks = a.iter().fold(w.len(), |n, a| n.min(a.len()));
        for (b, wb) in w.iter().enumerate().take(blocks) {
            if B::HAS_OFFSET {
                let m = wb.offset();
                for (o, a) in offsets.iter_mut().zip(&a) {
                    *o = m.mul_add(a[b].s, *o);
                }
            }
            let d = wb.scale();
            // SAFETY: this function's caller guarantees AVX2 and FMA.
            unsafe {
                let qx = wb.signed_bytes();
                for (acc, a) in acc.iter_mut().zip(&a) {
                    *acc = block_step(*acc, d, qx, &a[b]);
                }
            }
        }
        // SAFETY: as above.
        std::array::from_fn(|j| finish(unsafe { lanes(acc[j]) }, offsets[j]))
    }

    /// Only handed out by `dot_rows4_fn` after checking AVX2 and FMA.
    pub(crate) fn dot_rows4<B: BlockFormat>(w: [&[B]; 4], a: &[BlockQ8]) -> [f32; 4] {
        // SAFETY: `dot_rows4_fn` returns this only when the CPU has AVX2 and FMA.
        unsafe { dot_rows4_avx2(w, a) }
    }

    /// [`dot_avx2`] for four weight rows: each activation block is loaded once; every pair goes
    /// through the same operations in the same order as the one-row product.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn dot_rows4_avx2<B: BlockFormat>(w: [&[B]; 4], a: &[BlockQ8]) -> [f32; 4] {
        let [mut acc0, mut acc1, mut acc2, mut acc3] = [_mm256_setzero_ps(); 4];
        let mut offsets = [0f32; 4];
        let [w0, w1, w2, w3] = w;
        let blocks = a
            .len()
            .min(w0.len())
            .min(w1.len())
            .min(w2.len())
            .min(w3.len());
        for b in 0..blocks {
            let ab = &a[b];
            let (b0, b1, b2, b3) = (&w0[b], &w1[b], &w2[b], &w3[b]);
            if B::HAS_OFFSET {
                offsets[0] = b0.offset().mul_add(ab.s, offsets[0]);
                offsets[1] = b1.offset().mul_add(ab.s, offsets[1]);
                offsets[2] = b2.offset().mul_add(ab.s, offsets[2]);
                offsets[3] = b3.offset().mul_add(ab.s, offsets[3]);
            }
            // SAFETY: this function's caller guarantees AVX2 and FMA.
            unsafe {
                let qa = load_32(&ab.qs);
                acc0 = block_step_loaded(acc0, b0.scale(), b0.signed_bytes(), qa, ab.d);
                acc1 = block_step_loaded(acc1, b1.scale(), b1.signed_bytes(), qa, ab.d);
                acc2 = block_step_loaded(acc2, b2.scale(), b2.signed_bytes(), qa, ab.d);
                acc3 = block_step_loaded(acc3, b3.scale(), b3.signed_bytes(), qa, ab.d);
            }
        }
        // SAFETY: as above.
        unsafe { finish4([acc0, acc1, acc2, acc3], offsets) }
    }

    /// [`finish`] for four accumulators.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn finish4(acc: [__m256; 4], offsets: [f32; 4]) -> [f32; 4] {
        // SAFETY: this function's caller guarantees AVX2.
        [0, 1, 2, 3].map(|k| finish(unsafe { lanes(acc[k]) }, offsets[k]))
    }

    /// The eight lanes of an accumulator.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn lanes(acc: __m256) -> [f32; 8] {
        let mut out = [0f32; 8];
        // SAFETY: `out` holds 8 f32.
        unsafe { _mm256_storeu_ps(out.as_mut_ptr(), acc) };
        out
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn small_rounding_is_round_ties_even() {
        for i in -300_000..300_000 {
            let x = i as f32 / 2048.0;
            assert_eq!(super::round_small(x), x.round_ties_even(), "{x}");
        }
        assert_eq!(super::round_small(2.5), 2.0);
        assert_eq!(super::round_small(-3.5), -4.0);
    }

    #[test]
    fn simd_quantization_gives_the_portable_bits() {
        let mut state = 12345u32;
        let mut x: Vec<f32> = (0..32 * 64)
            .map(|_| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                ((state >> 8) as f32 / (1u32 << 24) as f32 - 0.5) * 7.0
            })
            .collect();
        // Exact ties (halves after scaling by 127 / 127), a zero block, NaN and infinities.
        for (i, v) in x[..32].iter_mut().enumerate() {
            *v = i as f32 - 15.5;
        }
        x[32..64].fill(0.0);
        x[64] = f32::NAN;
        x[96] = f32::INFINITY;
        x[128] = -127.0;
        x[129] = 127.0;
        let simd = super::quantize_q8(&x);
        let portable = super::quantize_q8_portable(&x);
        for (a, b) in simd.iter().zip(&portable) {
            assert_eq!(a.d.to_bits(), b.d.to_bits());
            assert_eq!(a.s.to_bits(), b.s.to_bits());
            assert_eq!(a.qs, b.qs);
        }
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;

    /// Checks a format's kernels on random blocks: the product is within quantization error of
    /// the dense product of the dequantized weights, the SIMD kernel equals the portable one
    /// bit for bit, and wrong sizes are refused.
    pub(crate) fn check_format<B: BlockFormat>(seed: u32) {
        let (rows, cols, n) = (37, 128, 13);
        let mut state = seed;
        let mut next = || {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            state >> 8
        };
        let mut bytes = Vec::new();
        for _ in 0..rows * cols / QK {
            let mut block: Vec<u8> = (0..B::BYTES).map(|_| (next() & 0xff) as u8).collect();
            for (k, &at) in B::F16_FIELDS.iter().enumerate() {
                let value = (next() % 1000) as f32 / 100_000.0 * if k == 0 { 1.0 } else { -1.0 };
                block[at..at + 2].copy_from_slice(&f16::from_f32(value).to_le_bytes());
            }
            bytes.extend(block);
        }
        let w = QuantMatrix::<B>::from_gguf_bytes(&bytes, rows, cols).unwrap();
        let mut dense = vec![0f32; rows * cols];
        for (o, row) in dense.chunks_exact_mut(cols).enumerate() {
            w.dequantize_row(o, row);
        }
        let x: Vec<f32> = (0..n * cols)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 25.0)
            .collect();
        let y = w.matmul(&x, n);
        // One row (weight rows in fours) gives the bits of the batched product's first row.
        let y1 = w.matmul(&x[..cols], 1);
        assert!(y1.iter().zip(&y).all(|(a, b)| a.to_bits() == b.to_bits()));
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
        let acts: Vec<Vec<BlockQ8>> = x.chunks_exact(cols).map(quantize_q8).collect();
        for (row, acts) in x.chunks_exact(cols).zip(&acts) {
            let portable = quantize_q8_portable(row);
            for (a, b) in acts.iter().zip(&portable) {
                assert_eq!(
                    (a.d.to_bits(), a.s.to_bits(), a.qs),
                    (b.d.to_bits(), b.s.to_bits(), b.qs)
                );
            }
        }
        let a = &acts[0];
        let group = pack8(&acts[..8]);
        for o in 0..rows {
            let portable = dot_portable(w.row(o), a);
            assert_eq!(dot_fn::<B>()(w.row(o), a).to_bits(), portable.to_bits());
            let four = dot4_fn::<B>()(w.row(o), [a, &acts[1], &acts[2], a]);
            let o4 = (o + 1) % rows;
            let rows4 = dot_rows4_fn::<B>()([w.row(o), w.row(o4), w.row(o), w.row(o)], a);
            assert_eq!(rows4[0].to_bits(), portable.to_bits());
            let eight = dot8_fn::<B>()(w.row(o), &group);
            let eight_portable = dot8_portable(w.row(o), &group);
            for (j, acts) in acts.iter().take(8).enumerate() {
                let expected = dot_portable(w.row(o), acts).to_bits();
                assert_eq!(eight[j].to_bits(), expected);
                assert_eq!(eight_portable[j].to_bits(), expected);
            }
            assert_eq!(rows4[1].to_bits(), dot_portable(w.row(o4), a).to_bits());
            assert_eq!(four[0].to_bits(), portable.to_bits());
            assert_eq!(
                four[1].to_bits(),
                dot_portable(w.row(o), &acts[1]).to_bits()
            );
        }
        assert!(w.matmul(&[], 0).is_empty());
        assert!(QuantMatrix::<B>::from_gguf_bytes(&bytes[1..], rows, cols).is_none());
        assert!(QuantMatrix::<B>::from_gguf_bytes(&bytes, rows, cols + 1).is_none());
    }
}
