//! netem's delay distribution tables, rebuilt from their definitions.
//!
//! `tc ... netem delay MU SIGMA distribution normal` loads iproute2's
//! `normal.dist` into the kernel, which then draws each delay as
//! `MU + SIGMA * table[rnd % 4096] / 8192` (see [`super::delay`]). The
//! tables are not measured data: iproute2 generates them at build time with
//! the NIST Net programs `netem/normal.c`, `pareto.c` and `paretonormal.c`.
//! This module computes the same tables the same way, so the emulator draws
//! from exactly netem's distributions (the tests compare them, entry for
//! entry, with the `.dist` files iproute2 installed where there are any):
//!
//! - **normal**: an inverse standard normal CDF. The generator walks `x`
//!   from -10 to 10.05 in steps of 0.00005, files each `x` under index
//!   `rint(16384 * Phi(x))` (the last `x` filed under an index stays), and
//!   keeps every fourth index, scaled by 8192 and clamped to an `i16`.
//! - **pareto**: shape `a = 3`, scale 1, by the inverse CDF at `u = i /
//!   65536` for `i` = 65536, 65520, ... 16: `(u^(-1/3) - 1.5) * 4/3 * 8192`,
//!   clamped above at 32767. Note the factor 4/3 is 1 / variance, not
//!   1 / standard deviation (0.866): netem's Pareto jitter has a standard
//!   deviation of 1.15 times SIGMA, and its long tail is cut at 4 SIGMA.
//! - **paretonormal**: entry by entry `(normal + 3 * pareto) / 4` (integer
//!   division), with the normal value before its clamp: a quarter normal and
//!   three quarters Pareto of the *same* quantile, not a mixture of two
//!   independent draws.

use std::sync::OnceLock;

/// `NETEM_DIST_SCALE`: table entries are standard deviations times this.
pub const DIST_SCALE: i64 = 8192;
/// Entries per table (the generators keep one index in four of 16384).
pub const ENTRIES: usize = 4096;
/// The generators' resolution of the CDF.
const TABLESIZE: usize = 16384;

// The C library's erf: the function iproute2's generators call, so that the
// same doubles give the same table.
extern "C" {
    fn erf(x: f64) -> f64;
}

/// The standard normal CDF as `normal.c` computes it.
fn normal_cdf(x: f64) -> f64 {
    // SAFETY: erf is a pure libm function of one double (no pointers, no
    // state but errno, which nothing here reads), callable from any thread.
    0.5 + 0.5 * unsafe { erf((x - 0.0) / (2.0_f64.sqrt() * 1.0)) }
}

/// C's `rint` in the default rounding mode: halves to even.
fn rint(x: f64) -> f64 {
    x.round_ties_even()
}

/// The normal table's entries before the `i16` clamp (`paretonormal`
/// combines these).
fn normal_unclamped() -> Vec<i32> {
    let mut table = vec![0.0_f64; TABLESIZE + 1];
    // Accumulated, not multiplied, as the C loop does: the same `x` values.
    let mut x = -10.0_f64;
    while x < 10.05 {
        // Phi is within 0..=1: an index within 0..=TABLESIZE.
        #[allow(clippy::cast_sign_loss)]
        let i = rint(TABLESIZE as f64 * normal_cdf(x)) as usize;
        table[i] = x;
        x += 0.00005;
    }
    (0..TABLESIZE)
        .step_by(4)
        .map(|i| rint(table[i] * DIST_SCALE as f64) as i32)
        .collect()
}

fn clamp_i16(value: i32) -> i16 {
    value.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16
}

/// `pareto.c`'s value at `u = i / 65536`.
fn pareto_value(i: u32) -> i32 {
    const A: f64 = 3.0;
    let u = f64::from(i) / 65536.0;
    let mut value = 1.0 / u.powf(1.0 / A);
    value -= 1.5;
    value *= (4.0 / 3.0) * DIST_SCALE as f64;
    rint(value.min(32767.0)) as i32
}

fn pareto_unclamped() -> Vec<i32> {
    (1..=ENTRIES as u32)
        .rev()
        .map(|k| pareto_value(k * 16))
        .collect()
}

fn build_normal() -> Vec<i16> {
    normal_unclamped().into_iter().map(clamp_i16).collect()
}

fn build_pareto() -> Vec<i16> {
    pareto_unclamped().into_iter().map(clamp_i16).collect()
}

fn build_paretonormal() -> Vec<i16> {
    normal_unclamped()
        .into_iter()
        .zip(pareto_unclamped())
        .map(|(normal, pareto)| clamp_i16((normal + 3 * pareto) / 4))
        .collect()
}

/// netem's `normal` table.
pub fn normal() -> &'static [i16] {
    static TABLE: OnceLock<Vec<i16>> = OnceLock::new();
    TABLE.get_or_init(build_normal)
}

/// netem's `pareto` table.
pub fn pareto() -> &'static [i16] {
    static TABLE: OnceLock<Vec<i16>> = OnceLock::new();
    TABLE.get_or_init(build_pareto)
}

/// netem's `paretonormal` table.
pub fn paretonormal() -> &'static [i16] {
    static TABLE: OnceLock<Vec<i16>> = OnceLock::new();
    TABLE.get_or_init(build_paretonormal)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The values of a `.dist` file (after its `#` comment lines).
    fn read_dist(text: &str) -> Vec<i16> {
        text.lines()
            .filter(|line| !line.starts_with('#'))
            .flat_map(str::split_whitespace)
            .map(|word| word.parse().unwrap())
            .collect()
    }

    #[test]
    fn each_table_has_netem_s_4096_entries_in_rising_order() {
        for table in [normal(), pareto(), paretonormal()] {
            assert_eq!(table.len(), ENTRIES);
            assert!(table.windows(2).all(|w| w[0] <= w[1]));
        }
    }

    #[test]
    fn the_tables_hold_the_values_iproute2_s_generators_print() {
        // Spot values of the files iproute2 generates and installs.
        let normal = normal();
        assert_eq!(&normal[..4], [-32768, -28307, -26871, -25967]);
        assert_eq!((normal[2048], normal[4095]), (0, 28858));
        let pareto = pareto();
        assert_eq!(&pareto[..4], [-5461, -5460, -5460, -5459]);
        assert_eq!((pareto[2048], pareto[4095]), (-2622, 32767));
        let paretonormal = paretonormal();
        assert_eq!(&paretonormal[..2], [-12305, -11171]);
        assert_eq!((paretonormal[2048], paretonormal[4095]), (-1966, 31789));
    }

    #[test]
    fn the_tables_equal_the_dist_files_installed_here() {
        let directories = [
            "/usr/lib/x86_64-linux-gnu/tc",
            "/usr/lib/tc",
            "/usr/lib64/tc",
        ];
        let Some(directory) = directories
            .iter()
            .find(|d| std::path::Path::new(d).join("normal.dist").exists())
        else {
            let _ = host::capability::machine_lacks(
                "no iproute2 .dist files to compare the tables with",
            );
            return;
        };
        for (name, table) in [
            ("normal", normal()),
            ("pareto", pareto()),
            ("paretonormal", paretonormal()),
        ] {
            let path = format!("{directory}/{name}.dist");
            let installed = read_dist(&std::fs::read_to_string(&path).unwrap());
            let differing: Vec<usize> =
                (0..ENTRIES).filter(|&k| installed[k] != table[k]).collect();
            assert!(
                installed.len() == ENTRIES && differing.is_empty(),
                "{path}: {} entries, differing at {differing:?}",
                installed.len()
            );
        }
    }
}
