//! The weight-holding building blocks: linear layers and LayerNorms, loaded by name.

use crate::activation::Activation;
use crate::error::Result;
use crate::kernels::{self, math};
use crate::weights::WeightLoader;

/// Whether a tensor lives in the base model (under `bert.` …) or in the head.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    Base,
    Head,
}

fn load(w: &WeightLoader<'_>, scope: Scope, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
    match scope {
        Scope::Base => w.base(name, shape),
        Scope::Head => w.get(name, shape),
    }
}

/// `y = x · Wᵀ + b` with `W` stored `[out, in]` as in PyTorch's `nn.Linear`.
#[derive(Debug, Clone)]
pub(crate) struct Linear {
    /// `W`, `[out, in]` row-major.
    pub weight: Vec<f32>,
    /// Empty when the layer has no bias.
    pub bias: Vec<f32>,
    pub out: usize,
    pub inp: usize,
}

impl Linear {
    /// Loads `{name}.weight` `[out, in]` and, with `bias`, `{name}.bias` `[out]`.
    pub fn load(
        w: &WeightLoader<'_>,
        scope: Scope,
        name: &str,
        inp: usize,
        out: usize,
        bias: bool,
    ) -> Result<Self> {
        let weight = load(w, scope, &format!("{name}.weight"), &[out, inp])?;
        let bias = if bias {
            load(w, scope, &format!("{name}.bias"), &[out])?
        } else {
            Vec::new()
        };
        Ok(Self {
            weight,
            bias,
            out,
            inp,
        })
    }

    /// Stacks layers with the same input width along the output (Q, K and V into one
    /// projection whose output is `[q | k | v]`).
    pub fn concat(parts: &[Linear]) -> Self {
        let inp = parts.first().map_or(0, |p| p.inp);
        let with_bias = parts.iter().all(|p| !p.bias.is_empty());
        Self {
            weight: parts
                .iter()
                .flat_map(|p| p.weight.iter().copied())
                .collect(),
            bias: if with_bias {
                parts.iter().flat_map(|p| p.bias.iter().copied()).collect()
            } else {
                Vec::new()
            },
            out: parts.iter().map(|p| p.out).sum(),
            inp,
        }
    }

    /// `x · Wᵀ` for `rows` rows, without bias.
    pub fn matmul(&self, x: &[f32], rows: usize) -> Vec<f32> {
        let mut y = vec![0.0; rows * self.out];
        kernels::linear(&mut y, x, rows, &self.weight, self.out, self.inp);
        y
    }

    /// `act(x · Wᵀ + b)`.
    pub fn forward(&self, x: &[f32], rows: usize, act: Activation) -> Vec<f32> {
        let mut y = self.matmul(x, rows);
        math::add_bias_activation(&mut y, &self.bias, act);
        y
    }
}

/// LayerNorm with its weight and (possibly absent) bias.
#[derive(Debug, Clone)]
pub(crate) struct Norm {
    pub gamma: Vec<f32>,
    pub beta: Vec<f32>,
    pub eps: f32,
}

impl Norm {
    /// Loads `{name}.weight` (or `.gamma`) and, with `bias`, `{name}.bias` (or `.beta`).
    pub fn load(
        w: &WeightLoader<'_>,
        scope: Scope,
        name: &str,
        width: usize,
        eps: f64,
        bias: bool,
    ) -> Result<Self> {
        Ok(Self {
            gamma: load(w, scope, &format!("{name}.weight"), &[width])?,
            beta: if bias {
                load(w, scope, &format!("{name}.bias"), &[width])?
            } else {
                Vec::new()
            },
            eps: eps as f32,
        })
    }

    /// Normalises every row in place.
    pub fn apply(&self, x: &mut [f32]) {
        kernels::layer_norm(x, &self.gamma, &self.beta, self.eps);
    }
}
