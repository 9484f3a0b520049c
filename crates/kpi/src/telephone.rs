//! Telephone: how long callers waited, and how many gave up. Only phone
//! contacts where `wait_seconds` is given count, in both: a call without a
//! recorded wait says nothing about waiting.

use crate::interval::Rate;

/// The mean wait, seconds: the waits' sum ÷ the calls with a wait; `None`
/// without any.
pub fn mean_wait(total_seconds: u64, waited: u64) -> Option<f64> {
    (waited > 0).then(|| total_seconds as f64 / waited as f64)
}

/// The median of `waits` (seconds, any order): the middle wait, or the
/// mean of the two middle waits of an even count; `None` when empty.
pub fn median_wait(waits: &[u32]) -> Option<f64> {
    let mut sorted = waits.to_vec();
    sorted.sort_unstable();
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    let low = f64::from(sorted[(n - 1) / 2]);
    let high = f64::from(sorted[n / 2]);
    Some((low + high) / 2.0)
}

/// Abandonment: calls with a wait whose outcome is `abandoned` ÷ calls with a wait.
pub fn abandonment_rate(abandoned: u64, waited: u64) -> Rate {
    Rate::new(abandoned, waited)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median_wait(&[40, 10, 30, 20]), Some(25.0));
        assert_eq!(median_wait(&[40, 10, 30, 20, 40]), Some(30.0));
        assert_eq!(median_wait(&[7]), Some(7.0));
        assert_eq!(median_wait(&[]), None);
    }

    #[test]
    fn the_mean_is_over_calls_with_a_wait_only() {
        assert_eq!(mean_wait(100, 4), Some(25.0));
        assert_eq!(mean_wait(0, 0), None);
        assert_eq!(abandonment_rate(1, 4).percent(), Some(25.0));
    }
}
