//! Reading a service's `/metrics` text.

/// The sum of every sample of metric `name` (all label sets), or 0 when
/// there is none.
pub fn sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(name)?;
            // `name{labels} value` or `name value`, not a longer name.
            let value = match rest.strip_prefix('{') {
                Some(labelled) => labelled.split_once('}')?.1,
                None if rest.starts_with(' ') => rest,
                None => return None,
            };
            value.trim().parse::<f64>().ok()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::sum;

    #[test]
    fn samples_of_one_name_are_summed_and_longer_names_ignored() {
        let text = "# TYPE a_total counter\na_total{entity=\"orders\"} 2\na_total{entity=\"inventory\"} 3\na_total_other 100\nb 7\n";
        assert_eq!(sum(text, "a_total"), 5.0);
        assert_eq!(sum(text, "b"), 7.0);
        assert_eq!(sum(text, "c"), 0.0);
    }
}
