//! A country as people type it, to its ISO 3166 alpha-2 code: the code itself,
//! the alpha-3 code, the English short and official names, the names keshvar
//! (built from the `countries` data set) lists in other languages (its
//! unofficial names and its translations into about 150 languages), and the
//! common aliases of `country/aliases.rs`. The build script folds them all into
//! one sorted table; nothing of keshvar is left in the binaries.
//!
//! Text is folded before lookup: lower case, Latin accents removed
//! ("Österreich" is "osterreich"), punctuation as spaces ("U.S.A." is "u s a"),
//! a leading "the" dropped. A folded name that two countries share in some
//! language is left out rather than guessed.

use std::sync::LazyLock;

use crate::lead::CountryCode;

/// Words people put in a country field that name no country, though some
/// language's name for one folds to them ("NA" is Namibia's code, "Y" Italy
/// in Vietnamese): kept as sent rather than read as a country.
const NOT_COUNTRIES: &[&str] = &[
    "na",
    "n a",
    "no",
    "n",
    "y",
    "yes",
    "none",
    "other",
    "others",
    "unknown",
    "male",
    "female",
    "man",
    "woman",
    "test",
    "any",
    "all",
    "world",
    "global",
    "international",
    "europe",
    "asia",
    "africa",
    "america latina",
];

/// Names two countries share in common use: kept as sent rather than guessed.
const AMBIGUOUS: &[&str] = &["congo", "virgin islands", "guinea republic", "samoa islands"];

mod fold;

pub use fold::fold;

include!(concat!(env!("OUT_DIR"), "/countries.rs"));

/// The names table, inflated: the build script's bytes, and where each name
/// starts and ends in them.
struct Names {
    table: Vec<u8>,
    /// Each name's start and end in `table`, in the table's (sorted) order;
    /// its code is the two bytes after the zero that ends it.
    spans: Vec<(u32, u32)>,
}

/// Inflated on the first lookup of a name (about 3 ms, once per process):
/// deflated, the table is a third of its size in every binary.
static NAMES: LazyLock<Names> = LazyLock::new(|| {
    let table = miniz_oxide::inflate::decompress_to_vec_with_limit(NAMES_DEFLATED, NAMES_LEN)
        .expect("the build script deflates the table");
    let mut spans = Vec::with_capacity(table.len() / 16);
    let mut start = 0;
    while let Some(end) = table[start..].iter().position(|&b| b == 0).map(|n| start + n) {
        spans.push((start as u32, end as u32));
        start = end + 3;
    }
    Names { table, spans }
});

/// The country a folded name names, from the table the build script makes.
fn named(folded: &str) -> Option<CountryCode> {
    let names = &*NAMES;
    let name = |&(start, end): &(u32, u32)| &names.table[start as usize..end as usize];
    let found = names.spans.binary_search_by(|span| name(span).cmp(folded.as_bytes())).ok()?;
    let at = names.spans[found].1 as usize + 1;
    Some(code([names.table[at], names.table[at + 1]]))
}

/// A code from the generated tables, which hold only upper-case pairs.
fn code([a, b]: [u8; 2]) -> CountryCode {
    CountryCode::parse(std::str::from_utf8(&[a, b]).unwrap_or_default()).expect("the table holds alpha-2 codes")
}

/// Every country by its English short name, sorted by name.
pub fn english_names() -> impl Iterator<Item = (&'static str, CountryCode)> {
    ENGLISH.iter().map(|&(name, alpha2)| (name, code(alpha2)))
}

/// The country `text` names, if it names exactly one: a two-letter code must
/// be one ISO 3166 assigns (or `UK`).
pub fn lookup(text: &str) -> Option<CountryCode> {
    let folded = fold(text);
    if NOT_COUNTRIES.contains(&folded.as_str()) || AMBIGUOUS.contains(&folded.as_str()) {
        return None;
    }
    if folded.len() == 2 && folded.bytes().all(|b| b.is_ascii_alphabetic()) {
        let upper = folded.to_ascii_uppercase();
        if upper == "UK" {
            return CountryCode::parse("GB").ok();
        }
        let alpha2 = [upper.as_bytes()[0], upper.as_bytes()[1]];
        return ALPHA2.binary_search(&alpha2).ok().map(|_| code(alpha2));
    }
    named(&folded)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(text: &str) -> Option<String> {
        lookup(text).map(|c| c.as_str().to_owned())
    }

    #[test]
    fn the_inflated_table_is_sorted_folded_names_of_assigned_codes() {
        let names = &*NAMES;
        assert!(names.spans.len() > 15_000, "{} names", names.spans.len());
        let mut previous: &str = "";
        for &(start, end) in &names.spans {
            let name = std::str::from_utf8(&names.table[start as usize..end as usize]).expect("UTF-8");
            assert!(!name.is_empty() && name > previous, "{name:?} after {previous:?}");
            assert_eq!(fold(name), name, "stored folded");
            let at = end as usize + 1;
            assert!(ALPHA2.binary_search(&[names.table[at], names.table[at + 1]]).is_ok(), "{name:?}");
            previous = name;
        }
        assert_eq!(names.spans.last().map(|&(_, end)| end as usize + 3), Some(names.table.len()));
    }

    #[test]
    fn names_codes_and_aliases_in_several_languages_find_their_country() {
        for (text, expected) in [
            ("DE", "DE"),
            ("de", "DE"),
            ("DEU", "DE"),
            ("Germany", "DE"),
            ("Deutschland", "DE"),
            ("Allemagne", "DE"),
            ("Alemania", "DE"),
            ("ドイツ", "DE"),
            ("United States", "US"),
            ("United States of America", "US"),
            ("USA", "US"),
            ("U.S.A.", "US"),
            ("U.S.", "US"),
            ("Estados Unidos", "US"),
            ("États-Unis", "US"),
            ("UK", "GB"),
            ("United Kingdom", "GB"),
            ("England", "GB"),
            ("Great Britain", "GB"),
            ("GBR", "GB"),
            ("The Netherlands", "NL"),
            ("Holland", "NL"),
            ("Österreich", "AT"),
            ("Schweiz", "CH"),
            ("Suisse", "CH"),
            ("South Korea", "KR"),
            ("Korea, Republic of", "KR"),
            ("Russian Federation", "RU"),
            ("Czech Republic", "CZ"),
            ("Côte d'Ivoire", "CI"),
            ("Viet Nam", "VN"),
            ("Türkiye", "TR"),
            ("  brazil  ", "BR"),
            ("Brasil", "BR"),
            ("México", "MX"),
            ("India", "IN"),
            ("日本", "JP"),
            ("Georgia", "GE"),
        ] {
            assert_eq!(code(text).as_deref(), Some(expected), "{text}");
        }
    }

    #[test]
    fn what_names_no_country_finds_nothing() {
        for text in [
            "",
            "XX",
            "Atlantis",
            "Europe",
            "EMEA",
            "n/a",
            "NA",
            "N/A",
            "-",
            "ZZZ",
            "123",
            "No",
            "Y",
            "Male",
            "Man",
            "Other",
            "Congo",
            "Virgin Islands",
        ] {
            assert_eq!(code(text), None, "{text}");
        }
    }

    #[test]
    fn folding_drops_case_accents_punctuation_and_a_leading_the() {
        assert_eq!(fold("  The  U.S.A. "), "u s a");
        assert_eq!(fold("Côte d’Ivoire"), "cote d ivoire");
        assert_eq!(fold("ÖSTERREICH"), "osterreich");
        assert_eq!(fold("日本"), "日本");
    }
}
