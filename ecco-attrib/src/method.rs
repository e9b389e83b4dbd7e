//! Attribution method names, Ecco's aliases included.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// An attribution method.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// `|d target / d embedding|` (captum `Saliency`; alias `saliency`).
    Gradient,
    /// `d target / d embedding * embedding` (captum `InputXGradient`).
    GradXInput,
    /// Integrated gradients from a zero baseline, Gauss-Legendre points (captum's defaults;
    /// alias `ig`).
    IntegratedGradients,
    /// Drop of the target when one input embedding is zeroed.
    Occlusion,
    /// Attention rollout (Abnar & Zuidema 2020): head-averaged attention plus the residual,
    /// composed over the blocks; ignores the target (alias `rollout`).
    AttentionRollout,
}

/// Every accepted name and what it means, for error messages and `--help`.
pub const KNOWN_METHODS: &[(&str, Method)] = &[
    ("grad_x_input", Method::GradXInput),
    ("gradient", Method::Gradient),
    ("saliency", Method::Gradient),
    ("integrated_gradients", Method::IntegratedGradients),
    ("ig", Method::IntegratedGradients),
    ("occlusion", Method::Occlusion),
    ("attention_rollout", Method::AttentionRollout),
    ("rollout", Method::AttentionRollout),
];

impl Method {
    /// The canonical name, used as the key in `trace.json`'s `attributions`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Gradient => "gradient",
            Self::GradXInput => "grad_x_input",
            Self::IntegratedGradients => "integrated_gradients",
            Self::Occlusion => "occlusion",
            Self::AttentionRollout => "attention_rollout",
        }
    }

    /// Whether the method needs gradients.
    pub fn needs_gradients(self) -> bool {
        !matches!(self, Self::Occlusion | Self::AttentionRollout)
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Method {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let s = s.trim();
        KNOWN_METHODS.iter().find(|(name, _)| *name == s).map(|(_, m)| *m).ok_or_else(|| Error::UnknownMethod {
            name: s.to_owned(),
            known: KNOWN_METHODS.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", "),
        })
    }
}

/// Parses a comma-separated list, dropping duplicates (aliases included) but keeping order.
///
/// # Errors
/// [`Error::UnknownMethod`] for the first unknown name.
pub fn parse_methods(list: &str) -> Result<Vec<Method>, Error> {
    let mut methods = Vec::new();
    for name in list.split(',').filter(|s| !s.trim().is_empty()) {
        let m: Method = name.parse()?;
        if !methods.contains(&m) {
            methods.push(m);
        }
    }
    Ok(methods)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_and_unknowns() {
        assert_eq!(parse_methods("ig,saliency,gradient").ok(), Some(vec![Method::IntegratedGradients, Method::Gradient]));
        let err = parse_methods("grad_x_input,deeplift").err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("`deeplift`") && err.contains("integrated_gradients"), "{err}");
    }
}
