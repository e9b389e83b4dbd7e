//! Matrix factorisation and representation-similarity measures for ecco-rs.
//!
//! This crate is the numerical back end of `ecco nmf` and of the layer-comparison
//! tools: it works on plain `nalgebra` matrices and knows nothing of models or traces.
//!
//! * **NMF** — [`Nmf`] factorises a non-negative `[positions, neurons]` activation
//!   matrix `X ≈ W H` as Ecco's `run_nmf` does (scikit-learn `NMF(init='random',
//!   random_state=0, max_iter=500)`), with our own implementation of Lin (2007)'s
//!   alternating projected-gradient method. [`activation_matrix`] builds that matrix
//!   from a trace's `[layers, neurons, positions]` FFN activations.
//! * **Similarity** — [`cca`], [`svcca`], [`pwcca`] and [`cka`] compare two
//!   `[neurons, tokens]` activation matrices, reproducing the numbers of Ecco 0.1.2's
//!   `ecco.analysis` (Google's svcca code with `epsilon = 1e-10`), quirks included.
//!
//! # Quick start
//!
//! ```
//! use ecco_factor::{Nmf, activation_matrix, cka, synthetic_activations};
//!
//! // A trace's FFN activations: 2 layers x 3 neurons x 4 positions, row-major.
//! let data: Vec<f32> = (0..24).map(|i| ((i * 7) % 5) as f32 - 1.0).collect();
//! let x = activation_matrix(&data, [2, 3, 4], &[0, 1])?; // [4 positions, 6 neurons]
//! let fit = Nmf::new(2).seed(0).max_iter(500).tol(1e-4).fit(&x)?;
//! assert_eq!(fit.w.shape(), (4, 2)); // factor activation per position
//! assert_eq!(fit.h.shape(), (2, 6)); // factor loading per neuron
//! assert!(fit.reconstruction_error <= x.norm() as f64);
//!
//! // Similarity of two [neurons, tokens] matrices.
//! let layer_a = synthetic_activations(30, 12, 3, 1).transpose().map(f64::from);
//! let layer_b = synthetic_activations(30, 16, 3, 1).transpose().map(f64::from);
//! let score = cka(&layer_a, &layer_b)?;
//! assert!((0.0..=1.0).contains(&score));
//! # Ok::<(), ecco_factor::Error>(())
//! ```
//!
//! # Crate map
//!
//! | module | holds |
//! | --- | --- |
//! | `matrix` | [`activation_matrix`]; input checks |
//! | `nmf` | [`Nmf`], [`NmfResult`]: Lin's outer loop, reconstruction error |
//! | `alternating` | Lin's outer loop; the `H` half-step fused with the data pass |
//! | `nls` | Lin's `nlssubprob`: projected gradient with Armijo-type step search, per panel |
//! | `nls_kernels` | `nls`'s SIMD kernels on one panel: packed `Q`, `Q d`, an Armijo trial |
//! | `panels` | the half-step layout: panels of 16 columns, SIMD across columns |
//! | `init` | scikit-learn-scaled random initialisation |
//! | `products` | the data in column blocks; `Wᵀ X`, `H Xᵀ`, Gram kernels |
//! | `exec` | which thread pool a fit uses |
//! | `cca` | [`cca`], [`canonical_correlations`]: port of svcca's `cca_core` |
//! | `svcca` | [`svcca`], [`SVCCA_DEFAULT_DIMS`] |
//! | `pwcca` | [`pwcca`]: port of svcca's `compute_pwcca` |
//! | `cka` | [`cka`]: feature-space linear CKA |
//! | `linalg` | centring, covariance, `pinv` square root, sign-fixed SVD |
//! | `synthetic` | [`synthetic_activations`]: seeded test matrix shared with the fixture script |
//! | `error` | [`Error`], [`Result`] |
//!
//! Fixtures and the reference script: `fixtures/factor/`, `scripts/fixtures/factor.py`.

#![warn(missing_docs)]

mod alternating;
mod big_buffer;
mod cca;
mod cka;
mod error;
mod exec;
mod init;
mod lane_sums;
mod linalg;
mod matrix;
mod nls;
mod nls_kernels;
mod nls_panel;
mod nmf;
mod panels;
mod products;
mod pwcca;
mod svcca;
mod synthetic;

pub use cca::{canonical_correlations, cca};
pub use cka::cka;
pub use error::{Error, Result};
pub use matrix::activation_matrix;
pub use nmf::{Nmf, NmfResult};
pub use pwcca::pwcca;
pub use svcca::{SVCCA_DEFAULT_DIMS, svcca};
pub use synthetic::synthetic_activations;
