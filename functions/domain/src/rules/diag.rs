//! Diagnostics for rule files: every problem names the file, the path inside it,
//! the line and column where the YAML parser knows them, and a suggestion when a
//! known name is close to what was written.

use std::fmt;

use serde::Serialize;

/// One problem found while loading the rules.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// The rule file, e.g. `routing.yaml` or `tests/enterprise.yaml`.
    pub file: String,
    /// Where inside the file, e.g. `rules[2].when.industy`; empty for the whole file.
    pub path: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column, when known.
    pub column: Option<usize>,
    pub message: String,
    /// A close known name, offered as "did you mean ...?".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suggestion: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        f.write_str(": ")?;
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)?;
        if let Some(suggestion) = &self.suggestion {
            write!(f, " (did you mean `{suggestion}`?)")?;
        }
        Ok(())
    }
}

/// Every problem found in one load, in file order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter()
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// The closest of `known` to `given`, when it is close enough to be a typo.
pub fn suggest<'a>(given: &str, known: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let given_lower = given.to_lowercase();
    known
        .into_iter()
        .map(|k| (strsim::damerau_levenshtein(&given_lower, &k.to_lowercase()), k))
        .filter(|(distance, k)| {
            // Allow roughly one edit per four characters, at least one, at most three.
            let budget = (k.chars().count().max(given.chars().count()) / 4).clamp(1, 3);
            *distance <= budget
        })
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, k)| k.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestion_finds_a_one_letter_typo() {
        assert_eq!(suggest("industy", ["industry", "country", "state"]), Some("industry".into()));
    }

    #[test]
    fn suggestion_is_none_when_nothing_is_close() {
        assert_eq!(suggest("zzz", ["industry", "country"]), None);
    }

    #[test]
    fn a_diagnostic_reads_file_line_column_path_message_and_hint() {
        let d = Diagnostic {
            file: "routing.yaml".into(),
            path: "rules[2].when.industy".into(),
            line: Some(14),
            column: Some(7),
            message: "unknown field `industy`".into(),
            suggestion: Some("industry".into()),
        };
        assert_eq!(
            d.to_string(),
            "routing.yaml:14:7: rules[2].when.industy: unknown field `industy` (did you mean `industry`?)"
        );
    }
}
