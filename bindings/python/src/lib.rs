//! `ecco_rs._ecco_rs`: the native half of the `ecco_rs` Python package, a thin layer over the
//! [`ecco`] crate. The pure-Python half (`python/ecco_rs/`) gives it Ecco's names and keyword
//! arguments, numpy arrays and the notebook display; everything computed here is the `ecco`
//! crate's, so the package and the `ecco` command give the same numbers.
//!
//! Long calls run on a worker thread with the GIL released while the calling thread waits
//! for them, checks for Ctrl-C and reports progress ([`interrupt`]); errors become Python
//! exceptions by their typed cause ([`errors`]); captured tensors reach numpy without a copy
//! ([`output::Tensor`]).

mod errors;
mod interrupt;
mod lm;
mod output;

use pyo3::prelude::*;

/// The module `ecco_rs._ecco_rs`.
#[pymodule]
fn _ecco_rs(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(lm::from_pretrained, m)?)?;
    m.add_function(wrap_pyfunction!(output::load, m)?)?;
    m.add_class::<lm::Lm>()?;
    m.add_class::<output::Output>()?;
    m.add_class::<output::Tensor>()?;
    m.add_class::<output::View>()?;
    m.add_class::<output::Nmf>()?;
    m.add("DEMO_NAME", ecco::DEMO_NAME)?;
    Ok(())
}
