//! Opening a CUDA device without a panic and without trusting a device that cannot run our
//! kernels: the libraries are probed first, then the device is opened and a tiny op is run on it.

use candle_core::{Device, Tensor};

use super::DeviceChoice;
use crate::error::{Error, Result};

/// The compute capability the kernels were built for (`CUDA_COMPUTE_CAP` of the build).
const COMPUTE_CAP: &str = match option_env!("CUDA_COMPUTE_CAP") {
    Some(cap) => cap,
    None => "80",
};

/// What a driver must support to load the kernels' PTX (`.version 9.4`, CUDA 13.4).
const DRIVER_NEEDED: &str = "an NVIDIA driver for CUDA 13.4 (580 or later)";

/// Whether the NVIDIA driver library (libcuda.so.1) loads here; always false without `cuda`.
#[cfg(feature = "cuda")]
pub fn cuda_driver_loads() -> bool {
    // SAFETY: opens the library by name and closes it again; no symbol is called.
    unsafe { cudarc::driver::sys::is_culib_present() }
}

#[cfg(not(feature = "cuda"))]
pub fn cuda_driver_loads() -> bool {
    false
}

/// CUDA device `n`, or an error naming it and what is missing.
pub(super) fn open_cuda(n: usize) -> Result<Device> {
    try_cuda(n).map_err(|e| Error::Other(e.message(n)))
}

/// Why no CUDA device could be opened.
// A build without the `cuda` feature makes only `NotBuilt`, one with it never makes `NotBuilt`.
#[allow(dead_code)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum NoCuda {
    NotBuilt,
    /// A library candle opens when it creates a device: which, its file, what to install.
    Missing {
        what: &'static str,
        file: &'static str,
        install: &'static str,
    },
    /// The driver loaded but has no GPU `n` (none at all, or hidden by CUDA_VISIBLE_DEVICES).
    NoDevice(String),
    /// The device did not start or could not run the built kernels (a driver too old for their
    /// PTX, a GPU below the build's compute capability, a broken library, ...).
    Failed(String),
}

impl NoCuda {
    /// For the status bar: `CPU (auto: <short>)`.
    pub(super) fn short(&self) -> String {
        match self {
            NoCuda::NotBuilt => "built without CUDA".into(),
            NoCuda::Missing { what, .. } => format!("no {}", what.trim_start_matches("the ")),
            NoCuda::NoDevice(_) => "no CUDA device".into(),
            NoCuda::Failed(_) => "CUDA failed, driver or GPU too old?".into(),
        }
    }

    pub(super) fn message(&self, n: usize) -> String {
        let name = DeviceChoice::Cuda(n);
        let instead = "or set train.device = \"auto\" or \"cpu\"";
        match self {
            NoCuda::NotBuilt => format!(
                "`{name}`: this gradlab was built without the `cuda` feature — build it with \
                 `--features cuda` (README, GPU), {instead}"
            ),
            NoCuda::Missing { what, file, install } => {
                format!("`{name}`: {what} ({file}) could not be loaded — {install}, {instead}")
            }
            NoCuda::NoDevice(why) => format!("`{name}`: no such CUDA device ({why}) — {instead}"),
            NoCuda::Failed(why) => format!(
                "`{name}`: CUDA failed ({why}) — Gradlab's kernels need {DRIVER_NEEDED} and a GPU \
                 of compute capability {COMPUTE_CAP} or more (README, GPU), {instead}"
            ),
        }
    }

    /// Sorts an error of the device's start: no such device, or anything else.
    #[cfg_attr(not(feature = "cuda"), allow(dead_code))]
    fn from_start(why: String) -> Self {
        let why = first_line(&why);
        let no_device = ["CUDA_ERROR_NO_DEVICE", "CUDA_ERROR_INVALID_DEVICE", "no CUDA-capable device"];
        if no_device.iter().any(|code| why.contains(code)) {
            NoCuda::NoDevice(why)
        } else {
            NoCuda::Failed(why)
        }
    }
}

/// Opens CUDA device `n` after checking that the libraries it needs load, then runs a tiny op
/// on it: opening a device needs no kernel, so a driver too old for the PTX or a GPU below the
/// build's compute capability would otherwise pass here and fail at the run's first kernel,
/// after `auto` had chosen it. cudarc loads the libraries at run time (the vendored
/// candle-core, vendor/candle-core/VENDORED.md) and PANICS where one (or a symbol) is missing:
/// the panic is caught and kept off the terminal, so the user sees only our message.
#[cfg(feature = "cuda")]
pub(super) fn try_cuda(n: usize) -> std::result::Result<Device, NoCuda> {
    if let Some(missing) = missing_cuda_library() {
        return Err(missing);
    }
    quietly(|| {
        let device = Device::new_cuda(n).map_err(|e| NoCuda::from_start(e.to_string()))?;
        smoke_test(&device).map_err(NoCuda::Failed)?;
        Ok(device)
    })
    .unwrap_or_else(|why| Err(NoCuda::from_start(why)))
}

#[cfg(not(feature = "cuda"))]
pub(super) fn try_cuda(_n: usize) -> std::result::Result<Device, NoCuda> {
    Err(NoCuda::NotBuilt)
}

/// Runs `f` with panics caught and the panic hook silenced, restoring the previous hook after;
/// a panic becomes its message. (The hook is process-wide: a panic on another thread in these
/// few milliseconds is not printed either; it still unwinds as usual.)
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
fn quietly<T>(f: impl FnOnce() -> T) -> std::result::Result<T, String> {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    std::panic::set_hook(previous);
    result.map_err(|panic| {
        panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or("the CUDA libraries failed to load")
            .to_string()
    })
}

/// An affine and a sum (the built kernels) and a 2x2 matmul (cuBLAS), read back to the host
/// and checked: an error, a panic or a wrong number means the device cannot train.
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
fn smoke_test(device: &Device) -> std::result::Result<(), String> {
    let run = || -> candle_core::Result<f32> {
        let a = Tensor::new(&[[1f32, 2.], [3., 4.]], device)?;
        a.affine(2.0, 1.0)?.matmul(&a)?.sum_all()?.to_scalar::<f32>()
    };
    match run() {
        // [[3, 5], [7, 9]] x [[1, 2], [3, 4]] = [[18, 26], [34, 50]]
        Ok(sum) if (sum - 128.0).abs() < 1e-3 => Ok(()),
        Ok(sum) => Err(format!("a test matmul gave {sum}, not 128")),
        Err(e) => Err(first_line(&e.to_string())),
    }
}

/// candle's errors carry a backtrace under RUST_BACKTRACE after their first line: not for users.
fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or("").trim().to_string()
}

/// The first library candle's CUDA device needs (`CudaDevice::new`: the driver, cuBLAS,
/// cuBLASLt, cuRAND) that does not load, if any. (NVRTC is not probed: candle-core and
/// candle-nn never compile kernels at run time.)
#[cfg(feature = "cuda")]
fn missing_cuda_library() -> Option<NoCuda> {
    let runtime = "install the CUDA runtime libraries (cuBLAS, cuRAND) matching the build and put \
                   them on LD_LIBRARY_PATH";
    let driver = "install the NVIDIA driver";
    // SAFETY: each probe only opens the library by name and closes it again; no symbol is called.
    let probes: [(unsafe fn() -> bool, &'static str, &'static str, &'static str); 4] = [
        (cudarc::driver::sys::is_culib_present, "the NVIDIA driver", "libcuda.so.1", driver),
        (cudarc::cublas::sys::is_culib_present, "cuBLAS", "libcublas.so", runtime),
        (cudarc::cublaslt::sys::is_culib_present, "cuBLASLt", "libcublasLt.so", runtime),
        (cudarc::curand::sys::is_culib_present, "cuRAND", "libcurand.so", runtime),
    ];
    probes.into_iter().find(|(present, ..)| !unsafe { present() }).map(|(_, what, file, install)| NoCuda::Missing {
        what,
        file,
        install,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_driver_is_named_with_the_device_and_what_to_do() {
        let missing = NoCuda::Missing { what: "the NVIDIA driver", file: "libcuda.so.1", install: "install it" };
        assert_eq!(
            missing.message(1),
            "`cuda:1`: the NVIDIA driver (libcuda.so.1) could not be loaded — install it, \
             or set train.device = \"auto\" or \"cpu\""
        );
        assert_eq!(missing.short(), "no NVIDIA driver");
    }

    /// The status bar tells "no GPU" from "a GPU that cannot run the kernels", and every message
    /// says what to set instead.
    #[test]
    fn no_device_and_a_failed_device_are_told_apart() {
        let none =
            NoCuda::from_start("DriverError(CUDA_ERROR_NO_DEVICE, \"no CUDA-capable device is detected\")".into());
        assert!(matches!(none, NoCuda::NoDevice(_)), "{none:?}");
        assert_eq!(none.short(), "no CUDA device");
        let ptx = NoCuda::from_start("DriverError(CUDA_ERROR_UNSUPPORTED_PTX_VERSION, \"...\")".into());
        assert!(matches!(ptx, NoCuda::Failed(_)), "{ptx:?}");
        assert_ne!(ptx.short(), none.short());
        let e = ptx.message(0);
        assert!(e.starts_with("`cuda`: CUDA failed (") && e.contains("CUDA_ERROR_UNSUPPORTED_PTX_VERSION"), "{e}");
        let traced = NoCuda::from_start(
            "DriverError(CUDA_ERROR_STUB_LIBRARY, \"\")\n   0: candle_core::error::Error::bt".into(),
        );
        assert_eq!(traced, NoCuda::Failed("DriverError(CUDA_ERROR_STUB_LIBRARY, \"\")".into()));
        assert!(e.contains("580 or later") && e.contains("compute capability"), "{e}");
        for why in [none, ptx, NoCuda::NotBuilt] {
            assert!(why.message(2).ends_with("or set train.device = \"auto\" or \"cpu\""), "{why:?}");
        }
    }

    /// The probe's op gives its number on a working device (the CPU here).
    #[test]
    fn the_smoke_test_passes_on_a_working_device() {
        assert_eq!(smoke_test(&Device::Cpu), Ok(()));
    }

    /// A panic inside the probe becomes its message, and the previous hook is back after.
    #[test]
    fn a_panic_in_the_probe_becomes_an_error() {
        let r: std::result::Result<(), String> = quietly(|| panic!("Missing symbol cuDeviceGet"));
        assert_eq!(r, Err("Missing symbol cuDeviceGet".to_string()));
        assert_eq!(quietly(|| 3), Ok(3));
    }
}
