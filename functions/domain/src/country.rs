//! A country as people type it, to its ISO 3166 alpha-2 code: the code itself,
//! the alpha-3 code, the English short and official names, the names keshvar
//! (built from the `countries` data set) lists in other languages (its
//! unofficial names and its translations into about 150 languages), and the
//! common aliases of [`ALIASES`].
//!
//! Text is folded before lookup: lower case, Latin accents removed
//! ("Österreich" is "osterreich"), punctuation as spaces ("U.S.A." is "u s a"),
//! a leading "the" dropped. A folded name that two countries share in some
//! language is left out rather than guessed.

use std::collections::HashMap;
use std::sync::LazyLock;

use crate::lead::CountryCode;

/// Names people use that the data set lacks or gives to no single country.
const ALIASES: &[(&str, &str)] = &[
    ("uk", "GB"),
    ("u k", "GB"),
    ("great britain", "GB"),
    ("britain", "GB"),
    ("england", "GB"),
    ("scotland", "GB"),
    ("wales", "GB"),
    ("northern ireland", "GB"),
    ("united kingdom", "GB"),
    ("us", "US"),
    ("u s", "US"),
    ("u s a", "US"),
    ("america", "US"),
    ("united states", "US"),
    ("united states of america", "US"),
    ("holland", "NL"),
    ("netherlands", "NL"),
    ("south korea", "KR"),
    ("korea", "KR"),
    ("republic of korea", "KR"),
    ("north korea", "KP"),
    ("russia", "RU"),
    ("czech republic", "CZ"),
    ("czechia", "CZ"),
    ("ivory coast", "CI"),
    ("turkey", "TR"),
    ("turkiye", "TR"),
    ("vietnam", "VN"),
    ("uae", "AE"),
    ("u a e", "AE"),
    ("emirates", "AE"),
    ("hong kong", "HK"),
    ("taiwan", "TW"),
    ("macau", "MO"),
    ("macao", "MO"),
    ("iran", "IR"),
    ("syria", "SY"),
    ("laos", "LA"),
    ("bolivia", "BO"),
    ("venezuela", "VE"),
    ("tanzania", "TZ"),
    ("moldova", "MD"),
    ("palestine", "PS"),
    ("vatican", "VA"),
    ("vatican city", "VA"),
    ("macedonia", "MK"),
    ("north macedonia", "MK"),
    ("brunei", "BN"),
    ("cape verde", "CV"),
    ("swaziland", "SZ"),
    ("eswatini", "SZ"),
    ("burma", "MM"),
    ("east timor", "TL"),
    ("dr congo", "CD"),
    ("drc", "CD"),
    ("democratic republic of the congo", "CD"),
    ("republic of the congo", "CG"),
    ("congo brazzaville", "CG"),
    ("congo kinshasa", "CD"),
    ("bosnia", "BA"),
    ("bosnia and herzegovina", "BA"),
    ("trinidad", "TT"),
    ("st lucia", "LC"),
    ("saint lucia", "LC"),
    ("st kitts", "KN"),
    ("micronesia", "FM"),
    ("falklands", "FK"),
    ("reunion", "RE"),
    ("curacao", "CW"),
    ("deutschland", "DE"),
    ("espana", "ES"),
    ("brasil", "BR"),
    ("mexico", "MX"),
    ("schweiz", "CH"),
    ("suisse", "CH"),
    ("osterreich", "AT"),
    ("sverige", "SE"),
    ("norge", "NO"),
    ("danmark", "DK"),
    ("suomi", "FI"),
    ("polska", "PL"),
    ("italia", "IT"),
    ("nederland", "NL"),
    ("belgie", "BE"),
    ("belgique", "BE"),
    ("eire", "IE"),
    ("nippon", "JP"),
    ("zhongguo", "CN"),
    ("prc", "CN"),
    ("peoples republic of china", "CN"),
];

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

/// Folded names, in order of trust: codes, English names, aliases, then the
/// names in other languages (where a name two countries share is dropped).
static NAMES: LazyLock<HashMap<String, CountryCode>> = LazyLock::new(|| {
    let mut names: HashMap<String, CountryCode> = HashMap::new();
    let mut other: HashMap<String, Option<CountryCode>> = HashMap::new();
    let code_of = |alpha2: &str| CountryCode::parse(alpha2).ok();
    for country in keshvar::CountryIterator::new() {
        let Some(code) = code_of(&country.alpha2().to_string()) else { continue };
        for name in
            [country.alpha3().to_string(), country.iso_short_name().to_owned(), country.iso_long_name().to_owned()]
        {
            names.entry(fold(&name)).or_insert(code);
        }
        let translated = country.translations().values().copied();
        for name in country.unofficial_name_list().iter().copied().chain(translated) {
            let key = fold(name);
            // Short Latin forms in other languages are too easily some other
            // word ("Y" is Italy in Vietnamese); other scripts write countries short.
            let short = if key.is_ascii() { 4 } else { 2 };
            if key.chars().count() < short {
                continue;
            }
            match other.get(&key) {
                Some(Some(seen)) if *seen != code => {
                    other.insert(key, None);
                }
                Some(_) => {}
                None => {
                    other.insert(key, Some(code));
                }
            }
        }
    }
    for (alias, alpha2) in ALIASES {
        if let Some(code) = code_of(alpha2) {
            names.insert((*alias).to_owned(), code);
        }
    }
    for (key, code) in other {
        if let (Some(code), false) = (code, key.is_empty()) {
            names.entry(key).or_insert(code);
        }
    }
    names
});

/// Lower case, Latin accents removed, anything but letters and digits a
/// single space, a leading "the " dropped.
pub fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut space = false;
    for c in text.chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() {
            if space && !out.is_empty() {
                out.push(' ');
            }
            space = false;
            // Latin letters with accents lose them; other scripts stay as they are.
            match (c as u32) < 0x0250 && !c.is_ascii() {
                true => match deunicode::deunicode_char(c) {
                    Some(plain) if plain.chars().all(|p| p.is_ascii_alphanumeric()) => {
                        out.extend(plain.chars().map(|p| p.to_ascii_lowercase()))
                    }
                    _ => out.push(c),
                },
                false => out.push(c),
            }
        } else {
            space = true;
        }
    }
    match out.strip_prefix("the ") {
        Some(rest) => rest.to_owned(),
        None => out,
    }
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
        return keshvar::Alpha2::try_from(upper.as_str()).ok().and_then(|_| CountryCode::parse(&upper).ok());
    }
    NAMES.get(&folded).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(text: &str) -> Option<String> {
        lookup(text).map(|c| c.as_str().to_owned())
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
