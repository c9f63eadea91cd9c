//! Causal attention of new tokens over a key/value cache (decoder models).
//!
//! A [`LayerCache`] keeps a layer's keys and values in buffers that grow by doubling, so a
//! decode step appends one position in place and reads the cache without copying it (a cache
//! rebuilt by concatenation costs time proportional to the context at every step). Each (query,
//! head) pair is one task on the pool: scores, an optional soft cap, the causal (and sliding
//! window) mask, softmax and the weighted sum of values, in the order candle's operations
//! compute them (scale after the product, `exp(x - max)`, division by the sum), or, for GGUF
//! models, in llama.cpp's arithmetic ([`ggml_cpu`]: f16 products in tinyBLAS's or
//! `ggml_vec_dot_f16`'s order, ggml's `expf` and softmax sums).

use super::ggml_cpu;
use super::math::simd_dispatch;
use super::pool;

/// One layer's cached keys and values: `[kv_heads][capacity][head_dim]` each, the first `len`
/// positions of every head filled.
#[derive(Debug, Clone, Default)]
pub(crate) struct LayerCache {
    k: Vec<f32>,
    v: Vec<f32>,
    heads: usize,
    dim: usize,
    capacity: usize,
    len: usize,
}

impl LayerCache {
    /// Appends `t` positions of keys and values laid out `[heads][t][dim]`; an error when they
    /// do not fit that layout or the geometry differs from the positions already cached (a cache
    /// made by another model).
    pub(crate) fn append(
        &mut self,
        heads: usize,
        dim: usize,
        k: &[f32],
        v: &[f32],
    ) -> Result<(), String> {
        if heads == 0 || dim == 0 {
            return Err("empty key geometry".into());
        }
        let t = k.len() / (heads * dim);
        if k.len() != t * heads * dim || v.len() != k.len() {
            return Err(format!("keys and values are not [{heads}, t, {dim}]"));
        }
        if self.capacity == 0 {
            self.heads = heads;
            self.dim = dim;
        }
        if heads != self.heads || dim != self.dim {
            return Err(format!(
                "the cache holds {} heads of {} values, not {heads} of {dim} (a cache from another model?)",
                self.heads, self.dim
            ));
        }
        if self.len + t > self.capacity {
            self.grow((self.len + t).max(2 * self.capacity).max(64));
        }
        for h in 0..heads {
            let dst = (h * self.capacity + self.len) * dim;
            let src = h * t * dim;
            self.k[dst..dst + t * dim].copy_from_slice(&k[src..src + t * dim]);
            self.v[dst..dst + t * dim].copy_from_slice(&v[src..src + t * dim]);
        }
        self.len += t;
        Ok(())
    }

    fn grow(&mut self, capacity: usize) {
        let (heads, dim) = (self.heads, self.dim);
        let mut k = vec![0f32; heads * capacity * dim];
        let mut v = vec![0f32; heads * capacity * dim];
        for h in 0..heads {
            let (old, new) = (h * self.capacity * dim, h * capacity * dim);
            let n = self.len * dim;
            k[new..new + n].copy_from_slice(&self.k[old..old + n]);
            v[new..new + n].copy_from_slice(&self.v[old..old + n]);
        }
        (self.k, self.v, self.capacity) = (k, v, capacity);
    }

    /// Positions cached.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    fn keys(&self, head: usize) -> &[f32] {
        let start = head * self.capacity * self.dim;
        &self.k[start..start + self.len * self.dim]
    }

    fn values(&self, head: usize) -> &[f32] {
        let start = head * self.capacity * self.dim;
        &self.v[start..start + self.len * self.dim]
    }
}

/// The geometry and arithmetic of a causal attention call.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CausalShape {
    pub(crate) heads: usize,
    pub(crate) kv_heads: usize,
    pub(crate) head_dim: usize,
    /// Multiplies the scores.
    pub(crate) scale: f32,
    /// `tanh(s / cap) · cap` on the scaled scores (Gemma 2).
    pub(crate) softcap: Option<f32>,
    /// Keys at most this many positions back are visible (`usize::MAX`: all).
    pub(crate) window: usize,
    /// Round the attention weights to f16 before they weigh the values (llama.cpp's f16 cache).
    pub(crate) f16_weights: bool,
    /// Sum as llama.cpp's CPU backend does ([`ggml_cpu`]): `Some(prompt)`, where `prompt` says
    /// whether the call runs two or more new tokens (tinyBLAS's order) or one (a decode step).
    /// Ignored when `softcap` is set.
    pub(crate) ggml: Option<bool>,
}

/// Attention of the last `t` cached positions' queries `q` (`[heads][t][head_dim]`) over every
/// cached position; returns `[t][heads * head_dim]`.
pub(crate) fn causal_attention(q: &[f32], cache: &LayerCache, shape: CausalShape) -> Vec<f32> {
    let CausalShape {
        heads,
        kv_heads,
        head_dim: dim,
        ..
    } = shape;
    assert!(
        kv_heads > 0 && heads.is_multiple_of(kv_heads),
        "heads are not a multiple of kv heads"
    );
    assert!(
        cache.heads == kv_heads && cache.dim == dim,
        "cache geometry"
    );
    let t = q.len() / (heads * dim);
    assert!(
        q.len() == t * heads * dim && t <= cache.len(),
        "queries are not [heads, t, dim]"
    );
    let start = cache.len() - t;
    let mut out = vec![0f32; t * heads * dim];
    // One chunk per (query, head): the chunk starting at (i·heads + h)·dim.
    let per_chunk = pool::chunk_len(t * heads, 1);
    pool::for_each_chunk_mut(&mut out, per_chunk * dim, |first, part| {
        let mut scores = Vec::new();
        let mut acc = Vec::new();
        for (k, out) in part.chunks_exact_mut(dim).enumerate() {
            let c = first / dim + k;
            let (i, h) = (c / heads, c % heads);
            let kvh = h / (heads / kv_heads);
            let position = start + i;
            let lo = (position + 1).saturating_sub(shape.window);
            let query = &q[(h * t + i) * dim..(h * t + i + 1) * dim];
            let keys = &cache.keys(kvh)[lo * dim..(position + 1) * dim];
            let values = &cache.values(kvh)[lo * dim..(position + 1) * dim];
            scores.clear();
            scores.resize(position + 1 - lo, 0.0);
            // llama.cpp's arithmetic covers attention without a soft cap (Gemma 3, the Llama
            // family); a soft-capped model keeps the f32 path.
            match shape.ggml.filter(|_| shape.softcap.is_none()) {
                Some(prompt) => attend_one_ggml(
                    out,
                    query,
                    keys,
                    values,
                    &mut scores,
                    lo,
                    prompt,
                    shape.scale,
                    &mut acc,
                ),
                None => attend_one(out, query, keys, values, &mut scores, shape),
            }
        }
    });
    out
}

simd_dispatch! {
    /// One query of one head over its visible keys: `out = softmax(scale·q·K) · V`.
    fn attend_one(
        out: &mut [f32],
        query: &[f32],
        keys: &[f32],
        values: &[f32],
        scores: &mut [f32],
        shape: CausalShape,
    ) {
        let dim = query.len();
        for (s, key) in scores.iter_mut().zip(keys.chunks_exact(dim)) {
            let mut acc = [0f32; 8];
            let (q8, k8) = (query.chunks_exact(8), key.chunks_exact(8));
            let tail: f32 = q8
                .remainder()
                .iter()
                .zip(k8.remainder())
                .map(|(a, b)| a * b)
                .sum();
            for (a, b) in q8.zip(k8) {
                for l in 0..8 {
                    acc[l] += a[l] * b[l];
                }
            }
            let dot = ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
            let mut x = (dot + tail) * shape.scale;
            if let Some(cap) = shape.softcap {
                x = (x / cap).tanh() * cap;
            }
            *s = x;
        }
        let max = scores.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x));
        scores.iter_mut().for_each(|s| *s = (*s - max).exp());
        let sum: f32 = scores.iter().sum();
        scores.iter_mut().for_each(|s| *s /= sum);
        if shape.f16_weights {
            scores
                .iter_mut()
                .for_each(|s| *s = half::f16::from_f32(*s).to_f32());
        }
        out.iter_mut().for_each(|o| *o = 0.0);
        for (&p, value) in scores.iter().zip(values.chunks_exact(dim)) {
            for (o, &v) in out.iter_mut().zip(value) {
                *o += p * v;
            }
        }
    }
}

simd_dispatch! {
    /// One query of one head over its visible keys (positions `first..`) in llama.cpp's
    /// arithmetic: f16 operands, ggml's products, softmax and sums (see [`ggml_cpu`]).
    #[allow(clippy::too_many_arguments)]
    fn attend_one_ggml(
        out: &mut [f32],
        query: &[f32],
        keys: &[f32],
        values: &[f32],
        scores: &mut [f32],
        first: usize,
        prompt: bool,
        scale: f32,
        acc: &mut Vec<f32>,
    ) {
        let dim = query.len();
        let tiled = prompt && dim.is_multiple_of(8);
        let visible = scores.len().min(keys.len() / dim.max(1));
        let mut done = 0;
        if tiled {
            // Four keys at a time: four independent chains, each key's own bits.
            while done + 4 <= visible {
                let key = |k: usize| &keys[(done + k) * dim..(done + k + 1) * dim];
                let dots = ggml_cpu::dot_tinyblas_rows([key(0), key(1), key(2), key(3)], query);
                for (s, dot) in scores[done..done + 4].iter_mut().zip(dots) {
                    *s = dot * scale;
                }
                done += 4;
            }
        }
        for (s, key) in scores.iter_mut().zip(keys.chunks_exact(dim)).skip(done) {
            let dot = if tiled {
                ggml_cpu::dot_tinyblas(key, query)
            } else {
                ggml_cpu::dot_vec_f16(key, query)
            };
            *s = dot * scale;
        }
        ggml_cpu::softmax(scores, first);
        scores
            .iter_mut()
            .for_each(|s| *s = half::f16::from_f32(*s).to_f32());
        ggml_cpu::weighted_values(out, scores, values, first, prompt, acc);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plain definition, position by position.
    fn reference(
        q: &[f32],
        k: &[f32],
        v: &[f32],
        t: usize,
        total: usize,
        shape: CausalShape,
    ) -> Vec<f32> {
        let (heads, kvh, d) = (shape.heads, shape.kv_heads, shape.head_dim);
        let mut out = vec![0f32; t * heads * d];
        for i in 0..t {
            let p = total - t + i;
            for h in 0..heads {
                let g = h / (heads / kvh);
                let lo = (p + 1).saturating_sub(shape.window);
                let s: Vec<f64> = (lo..=p)
                    .map(|j| {
                        (0..d)
                            .map(|x| {
                                q[(h * t + i) * d + x] as f64 * k[(g * total + j) * d + x] as f64
                            })
                            .sum::<f64>()
                            * shape.scale as f64
                    })
                    .collect();
                let m = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let e: Vec<f64> = s.iter().map(|x| (x - m).exp()).collect();
                let z: f64 = e.iter().sum();
                for x in 0..d {
                    out[(i * heads + h) * d + x] = (lo..=p)
                        .map(|j| e[j - lo] / z * v[(g * total + j) * d + x] as f64)
                        .sum::<f64>() as f32;
                }
            }
        }
        out
    }

    #[test]
    fn matches_the_definition_across_appends_and_windows() {
        let (heads, kv_heads, d, total) = (4, 2, 19, 37);
        let val = |i: usize| ((i * 7919 % 1000) as f32 / 500.0) - 1.0;
        let k: Vec<f32> = (0..kv_heads * total * d).map(|i| val(i + 1)).collect();
        let v: Vec<f32> = (0..kv_heads * total * d).map(|i| val(i + 77)).collect();
        // llama.cpp's arithmetic rounds the weights to f16: a looser bound there.
        let cases = [
            (usize::MAX, None, 1e-5),
            (5, None, 1e-5),
            (usize::MAX, Some(true), 2e-3),
            (5, Some(false), 2e-3),
        ];
        for (window, ggml, tolerance) in cases {
            let shape = CausalShape {
                heads,
                kv_heads,
                head_dim: d,
                scale: 0.3,
                softcap: None,
                window,
                f16_weights: false,
                ggml,
            };
            // 30 positions as a prompt, then single steps (the cache grows past 64 on the way).
            let mut cache = LayerCache::default();
            let mut done = 0;
            for t in [30, 1, 1, 5] {
                let take = |x: &[f32]| -> Vec<f32> {
                    (0..kv_heads)
                        .flat_map(|g| {
                            x[(g * total + done) * d..(g * total + done + t) * d].to_vec()
                        })
                        .collect()
                };
                cache.append(kv_heads, d, &take(&k), &take(&v)).unwrap();
                done += t;
                let q: Vec<f32> = (0..heads * t * d).map(|i| val(i * 3 + done)).collect();
                let got = causal_attention(&q, &cache, shape);
                let kk: Vec<f32> = (0..kv_heads)
                    .flat_map(|g| k[g * total * d..(g * total + done) * d].to_vec())
                    .collect();
                let vv: Vec<f32> = (0..kv_heads)
                    .flat_map(|g| v[g * total * d..(g * total + done) * d].to_vec())
                    .collect();
                let want = reference(&q, &kk, &vv, t, done, shape);
                for (a, b) in got.iter().zip(&want) {
                    assert!(
                        (a - b).abs() < tolerance,
                        "{a} vs {b} (t {t}, window {window}, ggml {ggml:?})"
                    );
                }
            }
        }
        let mut cache = LayerCache::default();
        cache.append(2, 4, &[0.0; 8], &[0.0; 8]).unwrap();
        assert!(cache.append(1, 8, &[0.0; 8], &[0.0; 8]).is_err());
        assert!(cache.append(2, 4, &[0.0; 7], &[0.0; 7]).is_err());
    }
}
