//! "Did you mean" for near misses of field names, kinds, phases and other closed sets.

/// The candidate closest to `word`, when it is close enough to be a typo.
pub(crate) fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let lower = word.to_ascii_lowercase();
    if let Some(same) = candidates.iter().find(|c| c.to_ascii_lowercase() == lower) {
        return Some(same);
    }
    // A third of the length tolerates one typo in short words and two or three in long ones.
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .iter()
        .map(|c| (distance(&lower, &c.to_ascii_lowercase()), *c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// The hint lines for a value outside a closed set: a suggestion if there is one, then the set.
pub(crate) fn hints(word: &str, candidates: &[&str], what: &str) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(near) = closest(word, candidates) {
        out.push(format!("did you mean `{near}`?"));
    }
    out.push(format!("{what}: {}", candidates.join(", ")));
    out
}

/// Edit distance where an insertion, deletion, substitution or swap of two adjacent
/// characters each count as one (optimal string alignment).
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let width = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * width];
    for i in 0..=a.len() {
        d[i * width] = i;
    }
    for (j, cell) in d.iter_mut().enumerate().take(width) {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[(i - 1) * width + j] + 1)
                .min(d[i * width + j - 1] + 1)
                .min(d[(i - 1) * width + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[(i - 2) * width + j - 2] + 1);
            }
            d[i * width + j] = best;
        }
    }
    d[a.len() * width + b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_misses_are_suggested() {
        let fields = ["image", "env", "hosts", "appNames"];
        assert_eq!(closest("imgae", &fields), Some("image"));
        assert_eq!(closest("appnames", &fields), Some("appNames"));
        assert_eq!(closest("host", &fields), Some("hosts"));
        assert_eq!(closest("registry", &fields), None);
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(distance("imgae", "image"), 1);
    }
}
