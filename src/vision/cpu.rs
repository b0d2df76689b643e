//! Which kernels a network runs: the CPU's best, or a lower level for testing and measuring
//! (`LOOKBOOK_CPU`), so one machine checks and times every path below its own.
//!
//! | level | f32 product | bf16 product |
//! | --- | --- | --- |
//! | `portable` | plain Rust, no SIMD beyond the target's baseline | bf16-rounded operands, the same kernel |
//! | `avx2` | lookbook's AVX2 and FMA kernel (the `gemm` crate's NEON on ARM) | rounded operands, the same |
//! | `avx512` | lookbook's AVX-512 kernel | rounded operands, the same |
//! | `avx512bf16` | lookbook's AVX-512 kernel | `vdpbf16ps` on bf16 operands |
//! | `amx` | lookbook's AVX-512 kernel | AMX tiles on bf16 operands |
//!
//! On levels whose bf16 product is emulated (and in f32), 3x3 stride-1 convolutions of a batch
//! run through Winograd's F(2x2, 3x3), which computes the same sums up to f32 rounding.
//!
//! Every level computes the same products up to summation order, so vectors agree across
//! machines (cosine above 0.9999 per photo; tested on every level the machine has).

use crate::{Error, Result};

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
            if super::amx::available() {
                Kernels::Amx
            } else if super::bf16dot::available() {
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

    /// The level to run: the CPU's, capped by `LOOKBOOK_CPU` when it is set.
    pub fn chosen() -> Result<Kernels> {
        let top = Kernels::detected();
        match std::env::var(ENV_CAP) {
            Ok(v) if !v.trim().is_empty() => Ok(v.parse::<Kernels>()?.min(top)),
            _ => Ok(top),
        }
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
