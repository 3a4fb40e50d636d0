//! Text sparklines and gauges: the work is proportional to the width drawn, not to the history kept.

/// The last `width` values as bars scaled to the largest shown; empty when there is no history.
pub fn sparkline<'a>(
    values: impl DoubleEndedIterator<Item = &'a u64> + ExactSizeIterator,
    width: usize,
    bars: &[char],
) -> String {
    let n = values.len().min(width);
    let shown: Vec<u64> = values
        .rev()
        .take(n)
        .copied()
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let max = shown.iter().copied().max().unwrap_or(0);
    shown
        .iter()
        .map(|&v| {
            if max == 0 {
                bars[0]
            } else {
                let i = (v as f64 / max as f64 * (bars.len() - 1) as f64).round() as usize;
                bars[i.min(bars.len() - 1)]
            }
        })
        .collect()
}

/// `████░░░░ 50%` for `done` of `total`.
pub fn gauge(done: u64, total: u64, width: usize, full: char, empty: char) -> String {
    let frac = if total == 0 {
        0.0
    } else {
        (done as f64 / total as f64).clamp(0.0, 1.0)
    };
    let filled = (frac * width as f64).round() as usize;
    let mut s: String = std::iter::repeat_n(full, filled).collect();
    s.extend(std::iter::repeat_n(empty, width - filled));
    format!("{s} {:>3.0}%", frac * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    const BARS: &[char] = &['1', '2', '3', '4'];

    #[test]
    fn sparkline_shows_the_latest_values_scaled() {
        let v = [0u64, 5, 10, 20, 40];
        assert_eq!(sparkline(v.iter(), 3, BARS), "234");
        assert_eq!(sparkline(v.iter(), 10, BARS).chars().count(), 5);
        assert_eq!(sparkline([0u64, 0].iter(), 4, BARS), "11");
        assert_eq!(sparkline([].iter(), 4, BARS), "");
    }

    #[test]
    fn gauge_fills_in_proportion() {
        assert_eq!(gauge(1, 2, 4, '#', '.'), "##..  50%");
        assert_eq!(gauge(0, 0, 2, '#', '.'), "..   0%");
        assert_eq!(gauge(9, 3, 2, '#', '.'), "## 100%");
    }
}
