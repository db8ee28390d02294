//! Where a run computes: the device a preset asks for (`train.device`) and the one it got.
//!
//! `auto` takes a GPU when its driver loads and otherwise the CPU; `cpu-portable` runs on the
//! CPU through the layers' portable forms (composed candle ops, as they run on CUDA and Metal)
//! instead of the fused CPU kernels, so the GPU path can be checked on a machine without one.

use std::fmt;
use std::str::FromStr;

use candle_core::Device;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};

mod cuda;

pub use cuda::cuda_driver_loads;
use cuda::{open_cuda, try_cuda};

/// `train.device`: `auto`, `cpu`, `cpu-portable`, `cuda`, `cuda:N`, `metal`, `metal:N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceChoice {
    Auto,
    #[default]
    Cpu,
    /// The CPU through the portable (GPU) forms of every layer and of the optimizer.
    CpuPortable,
    Cuda(usize),
    Metal(usize),
}

impl DeviceChoice {
    /// What the GUI offers (a GPU other than the first is typed into the preset).
    pub const OFFERED: [DeviceChoice; 5] = [
        DeviceChoice::Auto,
        DeviceChoice::Cpu,
        DeviceChoice::CpuPortable,
        DeviceChoice::Cuda(0),
        DeviceChoice::Metal(0),
    ];

    /// Why this gradlab cannot use the device at all (its feature is not built in), if so.
    pub fn not_built(self) -> Option<&'static str> {
        match self {
            DeviceChoice::Cuda(_) if !cfg!(feature = "cuda") => {
                Some("This gradlab was built without the `cuda` feature (README, GPU)")
            }
            DeviceChoice::Metal(_) if !cfg!(feature = "metal") => {
                Some("This gradlab was built without the `metal` feature (macOS only)")
            }
            _ => None,
        }
    }

    /// What the choice does, for the GUI's hover.
    pub fn help(self) -> &'static str {
        match self {
            DeviceChoice::Auto => "A GPU when its driver loads, otherwise the CPU (the status bar says which)",
            DeviceChoice::Cpu => "The CPU with Gradlab's fused kernels",
            DeviceChoice::CpuPortable => "The CPU through the layers' GPU forms (to check the GPU path)",
            DeviceChoice::Cuda(_) => "An NVIDIA GPU; the run fails with a clear message without its driver",
            DeviceChoice::Metal(_) => "An Apple GPU",
        }
    }
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceChoice::Auto => f.write_str("auto"),
            DeviceChoice::Cpu => f.write_str("cpu"),
            DeviceChoice::CpuPortable => f.write_str("cpu-portable"),
            DeviceChoice::Cuda(0) => f.write_str("cuda"),
            DeviceChoice::Cuda(n) => write!(f, "cuda:{n}"),
            DeviceChoice::Metal(0) => f.write_str("metal"),
            DeviceChoice::Metal(n) => write!(f, "metal:{n}"),
        }
    }
}

/// More GPUs than one machine holds: a larger number is a typo.
const MAX_DEVICES: usize = 64;

impl FromStr for DeviceChoice {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let ordinal = |n: &str| {
            n.parse::<usize>()
                .ok()
                .filter(|&n| n < MAX_DEVICES)
                .ok_or_else(|| format!("`{s}`: `{n}` is not a device number (0 to {})", MAX_DEVICES - 1))
        };
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(DeviceChoice::Auto),
            "cpu" => Ok(DeviceChoice::Cpu),
            "cpu-portable" => Ok(DeviceChoice::CpuPortable),
            "cuda" => Ok(DeviceChoice::Cuda(0)),
            "metal" => Ok(DeviceChoice::Metal(0)),
            other => match other.split_once(':') {
                Some(("cuda", n)) => ordinal(n).map(DeviceChoice::Cuda),
                Some(("metal", n)) => ordinal(n).map(DeviceChoice::Metal),
                _ => Err(format!("`{s}` is not a device: auto, cpu, cpu-portable, cuda, cuda:N, metal or metal:N")),
            },
        }
    }
}

impl Serialize for DeviceChoice {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DeviceChoice {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The device a run got, and how its layers run there.
#[derive(Debug, Clone)]
pub struct Compute {
    pub device: Device,
    /// Layers and the optimizer take their portable forms (always off the CPU; on the CPU for
    /// `cpu-portable`).
    pub portable: bool,
    /// What it is, for the status bar and the run's summary: `CPU`, `CPU (portable path)`,
    /// `CUDA 0`, with why `auto` fell back to the CPU.
    pub label: String,
}

impl From<Device> for Compute {
    fn from(device: Device) -> Self {
        let portable = !device.is_cpu();
        let label = describe(&device, portable);
        Self { device, portable, label }
    }
}

impl Compute {
    pub fn cpu() -> Self {
        Device::Cpu.into()
    }

    /// The CPU through the portable forms.
    pub fn cpu_portable() -> Self {
        Self { device: Device::Cpu, portable: true, label: describe(&Device::Cpu, true) }
    }

    /// Opens the device `choice` names; `auto` falls back to the CPU and says why in the label.
    pub fn open(choice: DeviceChoice) -> Result<Self> {
        match choice {
            DeviceChoice::Cpu => Ok(Self::cpu()),
            DeviceChoice::CpuPortable => Ok(Self::cpu_portable()),
            DeviceChoice::Cuda(n) => open_cuda(n).map(Into::into),
            DeviceChoice::Metal(n) => open_metal(n).map(Into::into),
            DeviceChoice::Auto => {
                // The label keeps only the short reason: it sits in the status bar.
                let gpu = match try_cuda(0) {
                    Ok(d) => Ok(d),
                    // A Metal build has no CUDA: its own reason is the one to show.
                    Err(_) if cfg!(feature = "metal") => open_metal(0).map_err(|e| metal_short(&e)),
                    Err(e) => Err(e.short()),
                };
                Ok(match gpu {
                    Ok(d) => d.into(),
                    Err(why) => {
                        let mut c = Self::cpu();
                        c.label = format!("CPU (auto: {why})");
                        c
                    }
                })
            }
        }
    }
}

fn describe(device: &Device, portable: bool) -> String {
    match device {
        Device::Cpu if portable => "CPU (portable path)".into(),
        Device::Cpu => "CPU".into(),
        Device::Cuda(_) => format!("CUDA {}", device_ordinal(device)),
        Device::Metal(_) => format!("Metal {}", device_ordinal(device)),
    }
}

fn device_ordinal(device: &Device) -> usize {
    match device.location() {
        candle_core::DeviceLocation::Cuda { gpu_id } | candle_core::DeviceLocation::Metal { gpu_id } => gpu_id,
        candle_core::DeviceLocation::Cpu => 0,
    }
}

/// Why Metal did not open, short enough for the status bar (the first line of candle's error,
/// without our `metal`: prefix).
fn metal_short(e: &Error) -> String {
    let text = e.to_string();
    let why = text.trim_start_matches("`metal`: ").lines().next().unwrap_or("").trim();
    let why: String = why.chars().take(60).collect();
    if why.is_empty() {
        "no Metal device".into()
    } else {
        format!("Metal failed: {why}")
    }
}

/// Metal device `n`, or an error naming it.
fn open_metal(n: usize) -> Result<Device> {
    let name = DeviceChoice::Metal(n);
    if !cfg!(feature = "metal") {
        return Err(Error::Other(format!("`{name}`: this gradlab was built without the `metal` feature")));
    }
    Device::new_metal(n).map_err(|e| Error::Other(format!("`{name}`: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_round_trip_through_their_names() {
        for (text, choice) in [
            ("auto", DeviceChoice::Auto),
            ("cpu", DeviceChoice::Cpu),
            ("cpu-portable", DeviceChoice::CpuPortable),
            ("cuda", DeviceChoice::Cuda(0)),
            ("cuda:2", DeviceChoice::Cuda(2)),
            ("metal", DeviceChoice::Metal(0)),
            ("metal:1", DeviceChoice::Metal(1)),
        ] {
            assert_eq!(text.parse::<DeviceChoice>().unwrap(), choice);
            assert_eq!(choice.to_string(), text);
        }
        assert_eq!("cuda:0".parse::<DeviceChoice>().unwrap(), DeviceChoice::Cuda(0));
        for bad in ["gpu", "cuda:", "cuda:x", "cuda:-1", "cuda:99", "tpu:0"] {
            let e = bad.parse::<DeviceChoice>().unwrap_err();
            assert!(e.contains(bad), "{e}");
        }
        let e = "cuda:99".parse::<DeviceChoice>().unwrap_err();
        assert!(e.contains("(0 to 63)"), "{e}");
    }

    #[test]
    fn cpu_portable_is_the_cpu_with_the_portable_forms() {
        let c = Compute::open(DeviceChoice::CpuPortable).unwrap();
        assert!(c.device.is_cpu() && c.portable);
        let c = Compute::open(DeviceChoice::Cpu).unwrap();
        assert!(c.device.is_cpu() && !c.portable && c.label == "CPU");
    }

    /// What this machine gives (no GPU here; a cuda build that finds a driver opens CUDA 0).
    #[test]
    fn auto_falls_back_to_the_cpu_and_says_why() {
        let c = Compute::open(DeviceChoice::Auto).unwrap();
        if c.device.is_cpu() {
            assert!(!c.portable);
            assert!(c.label.starts_with("CPU (auto: ") && c.label.ends_with(')'), "{}", c.label);
            // Exact where no driver loads (here, CI); where one does, any reason (no GPU, ...).
            let why = if cfg!(feature = "metal") || cuda_driver_loads() {
                None
            } else if cfg!(feature = "cuda") {
                Some("no NVIDIA driver")
            } else {
                Some("built without CUDA")
            };
            if let Some(why) = why {
                assert_eq!(c.label, format!("CPU (auto: {why})"));
            }
            let e = Compute::open(DeviceChoice::Cuda(0)).unwrap_err().to_string();
            assert!(e.starts_with("`cuda`: ") && e.contains("train.device = \"auto\""), "{e}");
        } else {
            assert_eq!(c.label, "CUDA 0");
        }
    }
}
