//! Activation functions by the names `transformers` uses in `config.json` (`ACT2FN`).

/// An activation function of a feed-forward layer or a head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// `gelu`: the exact GELU with `erf`.
    Gelu,
    /// `gelu_new`, `gelu_pytorch_tanh`, `gelu_fast`: GELU's tanh approximation.
    GeluTanh,
    /// `quick_gelu`: `x * sigmoid(1.702 x)`.
    QuickGelu,
    /// `relu`.
    Relu,
    /// `silu` / `swish`.
    Silu,
    /// `tanh`.
    Tanh,
    /// `sigmoid`.
    Sigmoid,
    /// `linear` / `identity`.
    Identity,
}

impl Activation {
    /// Applies the activation to every value of `x`, in place (vectorized; within a few units
    /// in the last place of the exact functions).
    pub fn apply_in_place(self, x: &mut [f32]) {
        crate::kernels::math::add_bias_activation(x, &[], self);
    }

    /// The gradient through the exact GELU: `grad[i] *= Φ(x[i]) + x[i]·φ(x[i])`, in place
    /// (`Φ` and `φ` the standard normal distribution and density; vectorized).
    ///
    /// Panics if the slices differ in length.
    pub fn gelu_backward_in_place(x: &[f32], grad: &mut [f32]) {
        crate::kernels::math::gelu_erf_backward(x, grad);
    }

    /// The names accepted by [`Activation::parse`].
    pub const NAMES: [&'static str; 11] = [
        "gelu",
        "gelu_new",
        "gelu_pytorch_tanh",
        "gelu_fast",
        "quick_gelu",
        "relu",
        "silu",
        "swish",
        "tanh",
        "sigmoid",
        "linear",
    ];

    /// Parses an activation name as `transformers` spells it.
    pub fn parse(name: &str) -> Result<Self, String> {
        Ok(match name {
            "gelu" => Self::Gelu,
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Self::GeluTanh,
            "quick_gelu" => Self::QuickGelu,
            "relu" => Self::Relu,
            "silu" | "swish" => Self::Silu,
            "tanh" => Self::Tanh,
            "sigmoid" => Self::Sigmoid,
            "linear" | "identity" => Self::Identity,
            other => {
                return Err(format!(
                    "unsupported activation `{other}`; supported: {}",
                    Self::NAMES.join(", ")
                ));
            }
        })
    }
}
