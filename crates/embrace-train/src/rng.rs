//! A small seeded generator (the datasets layer's SplitMix64, with the trainer's own seed mixing)
//! so that runs with the same seed are identical on every machine.

use embrace_datasets::rng::SplitMix64;

pub(crate) struct Rng(SplitMix64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(SplitMix64::from_state(seed ^ 0x5DEE_CE66_D1CE_4E5B))
    }

    /// The generator's state (to save in a checkpoint).
    pub(crate) fn state(&self) -> u64 {
        self.0.state()
    }

    /// A generator continuing from a saved [`Rng::state`].
    pub(crate) fn from_state(state: u64) -> Self {
        Self(SplitMix64::from_state(state))
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform in [0, 1).
    pub(crate) fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box-Muller).
    pub(crate) fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(1e-300);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    /// A permutation of `0..n` (Fisher-Yates).
    pub(crate) fn permutation(&mut self, n: usize) -> Vec<usize> {
        self.0.permutation(n)
    }
}
