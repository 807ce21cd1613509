//! "Did you mean …?": the known name closest to a misspelt one, so a message
//! about an unknown key, table or role points at the fix.

/// The candidate closest to `word` by edit distance, when it is close enough
/// to be a plausible typo (about one edit in three characters) and not `word`
/// itself. Case is ignored for the distance, as PostgreSQL folds unquoted names.
pub fn closest<'a, I, S>(word: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a S>,
    S: AsRef<str> + ?Sized + 'a,
{
    let folded = word.to_lowercase();
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(AsRef::as_ref)
        .filter(|candidate| *candidate != word)
        .map(|candidate| (distance(&folded, &candidate.to_lowercase()), candidate))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, candidate)| candidate)
}

/// ` (did you mean `x`?)` for the closest candidate, or nothing.
pub fn did_you_mean<'a, I, S>(word: &str, candidates: I) -> String
where
    I: IntoIterator<Item = &'a S>,
    S: AsRef<str> + ?Sized + 'a,
{
    closest(word, candidates)
        .map(|c| format!(" (did you mean `{c}`?)"))
        .unwrap_or_default()
}

/// Levenshtein distance, where swapping two neighbouring characters counts as
/// one edit (the most common typo).
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let width = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * width];
    for (i, cell) in d.iter_mut().step_by(width).enumerate() {
        *cell = i;
    }
    for (j, cell) in d.iter_mut().take(width).enumerate() {
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
    fn a_typo_is_matched_to_the_closest_name() {
        let keys = ["column", "type", "source", "function", "when_unbound"];
        assert_eq!(closest("colum", &keys), Some("column"));
        assert_eq!(closest("fucntion", &keys), Some("function"));
        assert_eq!(closest("Type", &keys), Some("type"));
        assert_eq!(
            did_you_mean("projetcs", &["projects".to_string(), "tasks".to_string()]),
            " (did you mean `projects`?)"
        );
    }

    #[test]
    fn an_unrelated_name_gets_no_suggestion() {
        assert_eq!(closest("colour", &["type", "source"]), None);
        assert_eq!(closest("x", &["abc"]), None);
        assert_eq!(did_you_mean("zzz", &["projects"]), "");
        assert_eq!(closest("same", &["same"]), None);
    }

    #[test]
    fn distance_counts_edits() {
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(distance("ab", "ba"), 1);
        assert_eq!(distance("", "abc"), 3);
    }
}
