//! What hand-written backward passes share: which forward-pass copy each row of a backward pass
//! reads ([`Rows`]).

use burn::tensor::{Device, Int, Tensor, TensorData};

/// Which input copy each row of a backward pass reads.
#[allow(clippy::large_enum_variant)] // one per backward pass, on the stack
pub(crate) enum Copies {
    /// One copy for every row: its tape is broadcast.
    Shared(usize),
    /// A copy per row, gathered.
    PerRow(Tensor<1, Int>),
}

/// Which input copies a backward pass reads, and how many positions.
pub(crate) struct Rows {
    copies: Copies,
    /// Positions the backward pass reads.
    pub(crate) len: usize,
}

impl Rows {
    pub(crate) fn new(copies: &[usize], len: usize, device: &Device) -> Self {
        let copies = match copies {
            [first, rest @ ..] if rest.iter().all(|c| c == first) => Copies::Shared(*first),
            _ => {
                let ids: Vec<i64> = copies.iter().map(|&c| c as i64).collect();
                Copies::PerRow(Tensor::from_data(TensorData::new(ids, [copies.len()]), device))
            }
        };
        Self { copies, len }
    }

    /// The rows' copies of `t` `[copies, ...]`: batch 1 when they share one.
    pub(crate) fn pick<const D: usize>(&self, t: &Tensor<D>) -> Tensor<D> {
        match &self.copies {
            Copies::Shared(c) => t.clone().slice_dim(0, *c..*c + 1),
            Copies::PerRow(ids) => t.clone().select(0, ids.clone()),
        }
    }
}
