//! How a country's name is folded before lookup; shared with the build script,
//! which folds every name in the data set the same way.

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
