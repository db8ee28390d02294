//! How much memory this machine can give a run, and human-readable byte sizes.

/// Assumed where the operating system gives no figure we read (off Linux): small enough that a
/// run refused here would not have fitted most laptops; `--max-memory` overrides it.
const FALLBACK_BYTES: u64 = 4 << 30;

/// Memory a new run can take, and where the figure comes from.
#[derive(Debug, Clone, PartialEq)]
pub struct Available {
    pub bytes: u64,
    pub source: String,
}

/// `MemAvailable` from `/proc/meminfo` (memory that can be had without swapping, page cache
/// included), or `MemTotal` on kernels without it, lowered to what a cgroup (a container's
/// memory limit) still allows. Off Linux, a conservative fixed figure.
pub fn available() -> Available {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok();
    let from_meminfo = meminfo.as_deref().and_then(|text| {
        meminfo_kib(text, "MemAvailable")
            .map(|kib| (kib, "MemAvailable"))
            .or_else(|| meminfo_kib(text, "MemTotal").map(|kib| (kib, "MemTotal")))
    });
    let Some((kib, field)) = from_meminfo else {
        return Available {
            bytes: FALLBACK_BYTES,
            source: "assumed: this system does not say how much memory is free".into(),
        };
    };
    let mut out = Available { bytes: kib.saturating_mul(1024), source: format!("{field} in /proc/meminfo") };
    if let Some(room) = cgroup_room() {
        if room < out.bytes {
            out = Available { bytes: room, source: "the memory limit of this process's cgroup".into() };
        }
    }
    out
}

fn meminfo_kib(text: &str, field: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.trim().trim_end_matches("kB").trim().parse().ok()
    })
}

/// `memory.max - memory.current` of the process's cgroup (v2), when it has a limit.
fn cgroup_room() -> Option<u64> {
    let cgroup = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let path = cgroup.lines().find_map(|l| l.strip_prefix("0::"))?.trim();
    let dir = std::path::Path::new("/sys/fs/cgroup").join(path.trim_start_matches('/'));
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).ok();
    let max: u64 = read("memory.max")?.trim().parse().ok()?; // "max" (no limit) does not parse
    let current: u64 = read("memory.current").and_then(|s| s.trim().parse().ok()).unwrap_or(0);
    Some(max.saturating_sub(current))
}

/// `180 MiB`, `61.2 GiB`: binary units, three significant figures.
pub fn format_bytes(bytes: f64) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if !bytes.is_finite() || bytes >= 1024f64.powi(7) {
        return "more than 1024 EiB".into();
    }
    let mut value = bytes.max(0.0);
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 || value >= 100.0 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A size as a user writes it: `8G`, `8 GiB`, `512M`, `1.5g`, `2T`; a plain number is GiB.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number.parse().map_err(|_| format!("`{text}` is not a size such as 8G or 512M"))?;
    let unit = unit.trim().to_ascii_lowercase();
    if unit == "b" {
        return Err(format!("`{text}`: give the size in K, M, G or T (a bare number means GiB)"));
    }
    let shift = match unit.trim_end_matches("ib").trim_end_matches('b') {
        "" | "g" => 30,
        "k" => 10,
        "m" => 20,
        "t" => 40,
        _ => return Err(format!("`{text}`: unknown unit `{unit}`; use K, M, G or T")),
    };
    let bytes = value * f64::from(1u32 << (shift - 10)) * 1024.0;
    if !(bytes.is_finite() && bytes >= 1.0 && bytes < u64::MAX as f64) {
        return Err(format!("`{text}` is not a usable memory size"));
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_print() {
        assert_eq!(parse_size("8G"), Ok(8 << 30));
        assert_eq!(parse_size("8 GiB"), Ok(8 << 30));
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("1.5"), Ok(3 << 29));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("8X").is_err());
        assert!(parse_size("0").is_err());
        assert_eq!(format_bytes(180.0 * 1024.0 * 1024.0), "180 MiB");
        assert_eq!(format_bytes(61.2 * 1024f64.powi(3)), "61.2 GiB");
        assert_eq!(format_bytes(1e30), "more than 1024 EiB");
    }

    #[test]
    fn meminfo_fields_are_read() {
        let text = "MemTotal:       24684084 kB\nMemFree:        21253004 kB\nMemAvailable:   23406788 kB\n";
        assert_eq!(meminfo_kib(text, "MemAvailable"), Some(23_406_788));
        assert_eq!(meminfo_kib(text, "MemTotal"), Some(24_684_084));
        assert!(available().bytes > 0);
    }
}
