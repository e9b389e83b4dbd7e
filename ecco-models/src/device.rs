//! Maps the `--device` choice to a burn [`Device`]; the only place that knows which backends
//! are compiled in.

use std::fmt;
use std::str::FromStr;

use burn::tensor::Device;

use crate::error::{Error, Result};

/// The kinds of device a model can run on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeviceKind {
    /// burn's pure-Rust CPU backend (feature `flex`, the default).
    #[default]
    Flex,
    /// Any GPU through wgpu: Vulkan, Metal, DirectX (feature `wgpu`).
    Wgpu,
    /// NVIDIA GPUs through CUDA (feature `cuda`).
    Cuda,
}

impl DeviceKind {
    /// The name used on the command line and in `trace.json`'s `backend`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Flex => "flex",
            Self::Wgpu => "wgpu",
            Self::Cuda => "cuda",
        }
    }

    /// The device of this kind.
    ///
    /// # Errors
    /// [`Error::DeviceUnavailable`] when the backend's feature is not compiled in.
    pub fn device(self) -> Result<Device> {
        let unavailable = |feature| Err(Error::DeviceUnavailable { device: self.name().to_owned(), feature });
        match self {
            #[cfg(feature = "flex")]
            Self::Flex => Ok(Device::flex()),
            #[cfg(not(feature = "flex"))]
            Self::Flex => unavailable("flex"),
            #[cfg(feature = "wgpu")]
            Self::Wgpu => Ok(Device::wgpu(Default::default())),
            #[cfg(not(feature = "wgpu"))]
            Self::Wgpu => unavailable("wgpu"),
            #[cfg(feature = "cuda")]
            Self::Cuda => Ok(Device::cuda(0)),
            #[cfg(not(feature = "cuda"))]
            Self::Cuda => unavailable("cuda"),
        }
    }
}

impl fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for DeviceKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "flex" | "cpu" => Ok(Self::Flex),
            "wgpu" => Ok(Self::Wgpu),
            "cuda" => Ok(Self::Cuda),
            other => Err(format!("unknown device `{other}` (known: flex, wgpu, cuda)")),
        }
    }
}
