//! "Did you mean ...?" suggestions.

/// The candidate closest to `word` by edit distance, if close enough to be a likely typo.
pub fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let word = word.to_ascii_lowercase();
    candidates
        .iter()
        .map(|c| (edit_distance(&word, c), *c))
        .filter(|(d, c)| {
            *d <= (c.len().max(word.len()) / 3).max(1) || c.starts_with(&word) && word.len() >= 2
        })
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// A `; did you mean `x`?` suffix, or nothing.
pub fn did_you_mean(word: &str, candidates: &[&str]) -> String {
    match closest(word, candidates) {
        Some(c) => format!("; did you mean `{c}`?"),
        None => String::new(),
    }
}

/// Edit distance counting insertions, deletions, substitutions and adjacent transpositions
/// (optimal string alignment), so `rleu` is one edit from `relu`.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_words_only() {
        let c = ["relu", "tanh", "sigmoid", "softmax", "leaky_relu"];
        assert_eq!(closest("rleu", &c), Some("relu"));
        assert_eq!(closest("sigmod", &c), Some("sigmoid"));
        assert_eq!(closest("softmx", &c), Some("softmax"));
        assert_eq!(closest("banana", &c), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(did_you_mean("dense", &["dense"]), "; did you mean `dense`?");
    }
}
