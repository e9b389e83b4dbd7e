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
    /// GPU devices are opened here, once per process, so that a machine without one gets
    /// an error rather than a panic at the first tensor.
    ///
    /// # Errors
    /// [`Error::DeviceUnavailable`] when the backend's feature is not compiled in;
    /// [`Error::DeviceInit`] when it is but the machine has no such device.
    pub fn device(self) -> Result<Device> {
        let unavailable = |feature| Err(Error::DeviceUnavailable { device: self.name().to_owned(), feature });
        match self {
            #[cfg(feature = "flex")]
            Self::Flex => Ok(Device::flex()),
            #[cfg(not(feature = "flex"))]
            Self::Flex => unavailable("flex"),
            #[cfg(feature = "wgpu")]
            Self::Wgpu => wgpu_device(),
            #[cfg(not(feature = "wgpu"))]
            Self::Wgpu => unavailable("wgpu"),
            #[cfg(feature = "cuda")]
            Self::Cuda => cuda_device(),
            #[cfg(not(feature = "cuda"))]
            Self::Cuda => unavailable("cuda"),
        }
    }
}

/// Whether `device` is the CPU backend, whose tensors live in host memory (where
/// [`crate::host::HostMatrix`] products run).
pub fn is_cpu(device: &Device) -> bool {
    #[cfg(feature = "flex")]
    {
        *device == Device::flex()
    }
    #[cfg(not(feature = "flex"))]
    {
        let _ = device;
        false
    }
}

/// The default wgpu adapter (on Linux: Vulkan first, so a software driver such as lavapipe
/// serves when there is no GPU), acquired on first use and shared after.
#[cfg(feature = "wgpu")]
fn wgpu_device() -> Result<Device> {
    static DEVICE: std::sync::OnceLock<std::result::Result<Device, String>> = std::sync::OnceLock::new();
    use burn::tensor::wgpu::WgpuInitError;
    DEVICE
        .get_or_init(|| {
            Device::wgpu_options().init().map_err(|e| match e {
                WgpuInitError::AdapterUnavailable { .. } => {
                    format!("{e} (install a GPU driver, or a software Vulkan driver such as Debian's mesa-vulkan-drivers)")
                }
                e => e.to_string(),
            })
        })
        .clone()
        .map_err(|reason| Error::DeviceInit { device: "wgpu", reason })
}

/// The first CUDA device, once the driver is known to be there: burn's CUDA runtime panics
/// at the first tensor without `libcuda`.
#[cfg(feature = "cuda")]
fn cuda_device() -> Result<Device> {
    use burn::tensor::DeviceType;
    Device::enumerate(DeviceType::Cuda).into_iter().next().ok_or(Error::DeviceInit {
        device: "cuda",
        reason: "no CUDA device (the NVIDIA driver's libcuda.so was not found, or it lists no GPU)".to_owned(),
    })
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
