//! Summaries of repeated measurements.

/// The median of `values` (the upper middle one for an even count; NaN for
/// none), leaving `values` as they are.
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN)
}

#[cfg(test)]
mod tests {
    use super::median;

    // The values are exact small integers: equality is the right test.
    #[allow(clippy::float_cmp)]
    #[test]
    fn the_median_is_the_middle_value_in_order() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 3.0);
        assert!(median(&[]).is_nan());
    }
}
