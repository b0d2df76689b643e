//! Which kernels a network runs: the CPU's best, or a lower level for testing and measuring
//! (`LOOKBOOK_CPU`), so one machine checks and times every path below its own.
//!
//! | level | f32 product | bf16 product |
//! | --- | --- | --- |
//! | `portable` | plain Rust, no SIMD beyond the target's baseline | bf16-rounded operands, the same kernel |
//! | `avx2` | lookbook's AVX2 and FMA kernel (the `gemm` crate's NEON on ARM) | rounded operands, the same |
//! | `avx512` | lookbook's AVX-512 kernel | rounded operands, the same |
//! | `avx512bf16` | lookbook's AVX-512 kernel | per convolution, whichever measured fastest here (`super::tune`): `vdpbf16ps` on bf16 operands, for 3x3 stride-1 convolutions `vdpbf16ps` inside Winograd's F(2x2, 3x3), or the `avx512` row's |
//! | `amx` | lookbook's AVX-512 kernel | AMX tiles on bf16 operands |
//!
//! On levels whose bf16 product is emulated (and in f32), 3x3 stride-1 convolutions of a batch
//! run through Winograd's F(4x4, 3x3) or F(2x2, 3x3), which compute the same sums up to f32
//! rounding; on dot products, through F(2x2, 3x3) where it measured fastest, its transformed
//! operands rounded to bf16.
//!
//! Every level computes the same products up to summation order, so vectors agree across
//! machines (cosine above 0.9999 per photo; tested on every level the machine has).
//!
//! This module only asks the CPU (CPUID, the kernel's permission for AMX tile state); the
//! kernels import it, never the other way round.

use crate::{Error, Result};
use std::sync::OnceLock;

/// Environment variable capping the kernels (never above what the CPU has).
pub const ENV_CAP: &str = "LOOKBOOK_CPU";
/// Environment variable that turns a kernel test the CPU cannot run into a failure.
pub const ENV_REQUIRE: &str = "LOOKBOOK_REQUIRE_CPU";

/// A kernel level, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub enum Kernels {
    /// Plain Rust.
    Portable,
    /// AVX2 and FMA (on ARM: the `gemm` crate's NEON kernels).
    Avx2,
    /// AVX-512F.
    Avx512,
    /// AVX-512F with AVX512_BF16 dot products.
    Avx512Bf16,
    /// AVX-512F with AMX bf16 tiles.
    Amx,
}

impl Kernels {
    /// Every level, lowest first.
    pub const ALL: [Kernels; 5] = [
        Kernels::Portable,
        Kernels::Avx2,
        Kernels::Avx512,
        Kernels::Avx512Bf16,
        Kernels::Amx,
    ];

    /// The name `LOOKBOOK_CPU` takes.
    pub fn name(self) -> &'static str {
        match self {
            Kernels::Portable => "portable",
            Kernels::Avx2 => "avx2",
            Kernels::Avx512 => "avx512",
            Kernels::Avx512Bf16 => "avx512bf16",
            Kernels::Amx => "amx",
        }
    }

    /// The best level this CPU runs.
    pub fn detected() -> Kernels {
        #[cfg(target_arch = "x86_64")]
        {
            if !std::arch::is_x86_feature_detected!("avx512f") {
                return if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                    Kernels::Avx2
                } else {
                    Kernels::Portable
                };
            }
            if has_amx() {
                Kernels::Amx
            } else if has_avx512_bf16() {
                Kernels::Avx512Bf16
            } else {
                Kernels::Avx512
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        Kernels::Avx2
    }

    /// Every level this CPU runs, lowest first.
    pub fn here() -> Vec<Kernels> {
        let top = Kernels::detected();
        Kernels::ALL.into_iter().filter(|k| *k <= top).collect()
    }

    /// The levels a run may use: those the CPU has, up to `LOOKBOOK_CPU` when it is set.
    pub fn capped() -> Result<Kernels> {
        let top = Kernels::detected();
        match std::env::var(ENV_CAP) {
            Ok(v) if !v.trim().is_empty() => Ok(v.parse::<Kernels>()?.min(top)),
            _ => Ok(top),
        }
    }

    /// The level to run: `LOOKBOOK_CPU`'s (at most the CPU's) when it is set, else the best the
    /// CPU has. (At `avx512bf16` each convolution of a bf16 network then runs whichever of the
    /// dot products and the AVX-512 kernel on rounded operands measured faster on this CPU,
    /// [`super::tune`]: that replaced a rule by vendor, dot products on AMD only, which issue
    /// 38's measurements showed wrong there for whole layers.)
    pub fn chosen() -> Result<Kernels> {
        Kernels::capped()
    }

    /// Whether this machine runs `self`; when it does not, a test that needs it says so on
    /// stderr and passes, unless `LOOKBOOK_REQUIRE_CPU` names this level or a higher one.
    ///
    /// # Panics
    /// When the level is required (by `LOOKBOOK_REQUIRE_CPU`) and the CPU lacks it: the point.
    pub fn here_or_skip(self, test: &str) -> bool {
        if self <= Kernels::detected() {
            return true;
        }
        let required = std::env::var(ENV_REQUIRE)
            .ok()
            .and_then(|v| v.parse::<Kernels>().ok())
            .is_some_and(|r| r >= self);
        assert!(
            !required,
            "{test}: {ENV_REQUIRE} asks for {} but this CPU's best is {}",
            self.name(),
            Kernels::detected().name()
        );
        eprintln!(
            "{test}: skipped on {}: this CPU's best is {}",
            self.name(),
            Kernels::detected().name()
        );
        false
    }

    /// True when f32 products use lookbook's AVX-512 kernel.
    pub(crate) fn avx512(self) -> bool {
        self >= Kernels::Avx512
    }
}

/// The CPU's name from CPUID (its brand string, e.g. "AMD EPYC 9R14 96-Core Processor"), or
/// "unknown": what a network's measured products are kept for.
pub fn brand() -> String {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::__cpuid;
        // Leaves 0x80000002..4 hold 48 bytes of name, when the CPU has them.
        if __cpuid(0x8000_0000).eax >= 0x8000_0004 {
            let bytes: Vec<u8> = (0x8000_0002u32..=0x8000_0004)
                .flat_map(|leaf| {
                    let r = __cpuid(leaf);
                    [r.eax, r.ebx, r.ecx, r.edx].into_iter().flat_map(u32::to_le_bytes)
                })
                .collect();
            let name = String::from_utf8_lossy(&bytes);
            let name = name.trim_matches(|c: char| c == '\0' || c.is_whitespace());
            if !name.is_empty() {
                return name.split_whitespace().collect::<Vec<_>>().join(" ");
            }
        }
    }
    "unknown".into()
}

impl std::str::FromStr for Kernels {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Kernels::ALL
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "{ENV_CAP}={s:?}: expected portable, avx2, avx512, avx512bf16 or amx (or unset it for this CPU's best)"
                ))
            })
    }
}

/// True when the CPU has AMX with bf16 and the kernel lets this process use its tile state
/// (Linux asks each process to request it once).
pub fn has_amx() -> bool {
    static READY: OnceLock<bool> = OnceLock::new();
    *READY.get_or_init(|| {
        #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
        {
            // CPUID leaf 7: EDX bit 22 is AMX-BF16, bit 24 AMX-TILE.
            let id = std::arch::x86_64::__cpuid_count(7, 0);
            if (id.edx >> 22) & 1 == 0 || (id.edx >> 24) & 1 == 0 {
                return false;
            }
            // The epilogue writes bf16 with AVX-512 BW, VL and AVX512_BF16 (every AMX CPU has them).
            if !has_avx512_bf16() {
                return false;
            }
            const ARCH_REQ_XCOMP_PERM: libc::c_long = 0x1023;
            const XFEATURE_XTILEDATA: libc::c_long = 18;
            // SAFETY: arch_prctl with these arguments only asks for permission; it touches no memory.
            unsafe { libc::syscall(libc::SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0 }
        }
        #[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
        false
    })
}

/// True when the CPU has AVX512_BF16 (and AVX-512F).
pub fn has_avx512_bf16() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        // BW and VL for the bf16 epilogue; every CPU with AVX512_BF16 has them.
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512vl")
            && std::arch::is_x86_feature_detected!("avx512bf16")
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_brand_is_the_cpus_model_name() {
        let name = brand();
        assert!(!name.is_empty() && !name.contains('\0'), "{name:?}");
        let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        if let Some(model) = info.lines().find_map(|l| l.strip_prefix("model name")) {
            let model = model.trim_start_matches([' ', '\t', ':']);
            assert_eq!(
                name,
                model.split_whitespace().collect::<Vec<_>>().join(" "),
                "CPUID and /proc/cpuinfo disagree"
            );
        }
    }
}
