//! AdamW with decoupled weight decay, as `torch.optim.AdamW` computes it, with a state that can
//! be saved in a checkpoint and restored (candle's optimizer keeps its moments private).
//!
//! Per parameter `p` with gradient `g` at step `t` (1-based):
//! `p ← p·(1 − lr·wd)`, `m ← β₁m + (1 − β₁)g`, `v ← β₂v + (1 − β₂)g²`,
//! `p ← p − lr·(m / (1 − β₁ᵗ)) / (√(v / (1 − β₂ᵗ)) + ε)`.

use std::collections::HashMap;

use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};

use crate::error::{Result, TrainError};

/// Hyper-parameters of one parameter group.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWParams {
    /// β₁.
    pub beta1: f64,
    /// β₂.
    pub beta2: f64,
    /// ε.
    pub eps: f64,
    /// Decoupled weight decay.
    pub weight_decay: f64,
}

/// One optimised parameter and its moments.
struct Slot {
    name: String,
    var: Var,
    params: AdamWParams,
    m: Tensor,
    v: Tensor,
}

/// AdamW over named parameters, each with its group's hyper-parameters.
pub struct AdamW {
    slots: Vec<Slot>,
    step: usize,
}

impl std::fmt::Debug for AdamW {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdamW")
            .field("parameters", &self.slots.len())
            .field("step", &self.step)
            .finish()
    }
}

impl AdamW {
    /// An optimizer over `(name, var, params)` triples, with zero moments.
    pub fn new(vars: Vec<(String, Var, AdamWParams)>) -> Result<Self> {
        let slots = vars
            .into_iter()
            .map(|(name, var, params)| {
                let zeros = var.as_tensor().zeros_like()?;
                Ok(Slot {
                    name,
                    var,
                    params,
                    m: zeros.clone(),
                    v: zeros,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { slots, step: 0 })
    }

    /// Updates counted so far.
    pub fn step_count(&self) -> usize {
        self.step
    }

    /// Applies one update with learning rate `lr`; parameters without a gradient are left
    /// alone (as PyTorch skips them).
    pub fn step(&mut self, grads: &GradStore, lr: f64) -> Result<()> {
        self.step += 1;
        let t = self.step as i32;
        for slot in &mut self.slots {
            let Some(g) = grads.get(slot.var.as_tensor()) else {
                continue;
            };
            let AdamWParams {
                beta1,
                beta2,
                eps,
                weight_decay,
            } = slot.params;
            slot.m = ((&slot.m * beta1)? + (g * (1.0 - beta1))?)?;
            slot.v = ((&slot.v * beta2)? + (g.sqr()? * (1.0 - beta2))?)?;
            let m_hat = (&slot.m / (1.0 - beta1.powi(t)))?;
            let v_hat = (&slot.v / (1.0 - beta2.powi(t)))?;
            let update = (m_hat / (v_hat.sqrt()? + eps)?)?;
            let p = slot.var.as_tensor();
            let decayed = (p * (1.0 - lr * weight_decay))?;
            slot.var.set(&(decayed - (update * lr)?)?)?;
        }
        Ok(())
    }

    /// The moments by name (`m.<param>`, `v.<param>`), for a checkpoint.
    pub fn state_tensors(&self) -> HashMap<String, Tensor> {
        self.slots
            .iter()
            .flat_map(|s| {
                [
                    (format!("m.{}", s.name), s.m.clone()),
                    (format!("v.{}", s.name), s.v.clone()),
                ]
            })
            .collect()
    }

    /// Restores the moments and the step count saved by [`AdamW::state_tensors`].
    pub fn load_state(&mut self, tensors: &HashMap<String, Tensor>, step: usize) -> Result<()> {
        for slot in &mut self.slots {
            let get = |key: String| -> Result<Tensor> {
                let t = tensors.get(&key).ok_or_else(|| {
                    TrainError::Config(format!("the checkpoint's optimizer state lacks {key}"))
                })?;
                if t.dims() != slot.var.as_tensor().dims() {
                    return Err(TrainError::Config(format!(
                        "the checkpoint's {key} has shape {:?}, the model {:?}",
                        t.dims(),
                        slot.var.as_tensor().dims()
                    )));
                }
                Ok(t.clone())
            };
            slot.m = get(format!("m.{}", slot.name))?;
            slot.v = get(format!("v.{}", slot.name))?;
        }
        self.step = step;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn matches_the_pytorch_update() {
        // torch.optim.AdamW(lr=0.1, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01), two steps
        // of loss = sum(p^2) from p = [1, -2]: p = [0.899, -1.898], then [0.798519, -1.796273].
        let p = Var::new(&[1.0f32, -2.0], &Device::Cpu).expect("var");
        let params = AdamWParams {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.01,
        };
        let mut opt = AdamW::new(vec![("p".into(), p.clone(), params)]).expect("opt");
        for want in [[0.899f32, -1.898], [0.798_519, -1.796_273]] {
            let loss = p.as_tensor().sqr().expect("sqr").sum_all().expect("sum");
            opt.step(&loss.backward().expect("grad"), 0.1)
                .expect("step");
            let got = p.as_tensor().to_vec1::<f32>().expect("values");
            for (g, w) in got.iter().zip(want) {
                assert!((g - w).abs() < 1e-5, "{got:?} vs {want:?}");
            }
        }
        let state = opt.state_tensors();
        assert_eq!(state.len(), 2);
        let mut again = AdamW::new(vec![("p".into(), p, params)]).expect("opt");
        again.load_state(&state, 2).expect("load");
        assert_eq!(again.step_count(), 2);
    }
}
