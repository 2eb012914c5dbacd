//! A walker over a parsed YAML document that keeps the path and the position of
//! every node, so that each problem can be reported where it is, and that goes on
//! after a problem so that one run reports all of them.

use marked_yaml::types::{MarkedMappingNode, MarkedScalarNode, MarkedSequenceNode};
use marked_yaml::{LoaderOptions, Node, Span};

use super::diag::{Diagnostic, suggest};

/// Rule files larger than this are refused before parsing.
pub const MAX_FILE_BYTES: usize = 1 << 20;

/// Conditions and other nested structures deeper than this are refused.
pub const MAX_DEPTH: usize = 64;

/// One rule file being compiled, and the problems found in it so far.
#[derive(Debug)]
pub struct Doc<'f> {
    pub file: &'f str,
    pub diags: Vec<Diagnostic>,
}

/// The path of a key inside `path`.
pub fn child(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_owned() } else { format!("{path}.{key}") }
}

/// The path of item `i` of the sequence at `path`.
pub fn item(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

fn position(span: &Span) -> (Option<usize>, Option<usize>) {
    match span.start() {
        Some(m) => (Some(m.line()), Some(m.column())),
        None => (None, None),
    }
}

/// Whether a node is YAML's null: `~`, `null` or nothing at all.
pub fn is_null(node: &Node) -> bool {
    match node {
        Node::Scalar(s) => s.may_coerce() && matches!(s.as_str(), "" | "~" | "null" | "Null" | "NULL"),
        _ => false,
    }
}

fn kind(node: &Node) -> &'static str {
    match node {
        Node::Scalar(_) if is_null(node) => "nothing",
        Node::Scalar(_) => "a single value",
        Node::Mapping(_) => "a map",
        Node::Sequence(_) => "a list",
    }
}

impl<'f> Doc<'f> {
    /// Parses `text`; a syntax error becomes a diagnostic and the node is `None`.
    pub fn parse(file: &'f str, text: &str) -> (Self, Option<Node>) {
        let mut doc = Doc { file, diags: Vec::new() };
        if text.len() > MAX_FILE_BYTES {
            doc.diags.push(Diagnostic {
                file: file.to_owned(),
                path: String::new(),
                line: None,
                column: None,
                message: format!("file is larger than {MAX_FILE_BYTES} bytes"),
                suggestion: None,
            });
            return (doc, None);
        }
        if text.trim().is_empty() {
            return (doc, None);
        }
        let options = LoaderOptions::default().error_on_duplicate_keys(true).toplevel_mapping();
        match marked_yaml::parse_yaml_with_options(0, text, options) {
            Ok(node) => (doc, Some(node)),
            Err(e) => {
                let (line, column, message) = load_error(&e);
                doc.diags.push(Diagnostic {
                    file: file.to_owned(),
                    path: String::new(),
                    line,
                    column,
                    message,
                    suggestion: None,
                });
                (doc, None)
            }
        }
    }

    pub fn error(&mut self, span: &Span, path: &str, message: impl Into<String>) {
        self.error_hint(span, path, message, None);
    }

    pub fn error_hint(&mut self, span: &Span, path: &str, message: impl Into<String>, suggestion: Option<String>) {
        let (line, column) = position(span);
        self.diags.push(Diagnostic {
            file: self.file.to_owned(),
            path: path.to_owned(),
            line,
            column,
            message: message.into(),
            suggestion,
        });
    }

    /// An error about the file as a whole (a missing top-level key, say).
    pub fn error_at_top(&mut self, path: &str, message: impl Into<String>) {
        self.error(&Span::new_blank(), path, message);
    }

    pub fn map<'n>(&mut self, node: &'n Node, path: &str) -> Option<&'n MarkedMappingNode> {
        match node {
            Node::Mapping(m) => Some(m),
            other => {
                self.error(other.span(), path, format!("expected a map, found {}", kind(other)));
                None
            }
        }
    }

    pub fn seq<'n>(&mut self, node: &'n Node, path: &str) -> Option<&'n MarkedSequenceNode> {
        match node {
            Node::Sequence(s) => Some(s),
            other => {
                self.error(other.span(), path, format!("expected a list, found {}", kind(other)));
                None
            }
        }
    }

    pub fn scalar<'n>(&mut self, node: &'n Node, path: &str) -> Option<&'n MarkedScalarNode> {
        match node {
            Node::Scalar(s) if !is_null(node) => Some(s),
            other => {
                self.error(other.span(), path, format!("expected a single value, found {}", kind(other)));
                None
            }
        }
    }

    /// A non-empty text value.
    pub fn text(&mut self, node: &Node, path: &str) -> Option<String> {
        let s = self.scalar(node, path)?;
        let t = s.as_str().trim();
        if t.is_empty() {
            self.error(s.span(), path, "expected a non-empty value");
            return None;
        }
        Some(t.to_owned())
    }

    pub fn int(&mut self, node: &Node, path: &str) -> Option<i64> {
        let s = self.scalar(node, path)?;
        match s.as_str().trim().replace('_', "").parse::<i64>() {
            Ok(n) if s.may_coerce() => Some(n),
            _ => {
                self.error(s.span(), path, format!("expected a whole number, found `{}`", s.as_str()));
                None
            }
        }
    }

    /// A whole number that is zero or more.
    pub fn count(&mut self, node: &Node, path: &str) -> Option<u32> {
        let span = *node.span();
        let n = self.int(node, path)?;
        match u32::try_from(n) {
            Ok(n) => Some(n),
            Err(_) => {
                self.error(&span, path, format!("expected a whole number of zero or more, found {n}"));
                None
            }
        }
    }

    pub fn number(&mut self, node: &Node, path: &str) -> Option<f64> {
        let s = self.scalar(node, path)?;
        match s.as_str().trim().replace('_', "").parse::<f64>() {
            Ok(n) if s.may_coerce() && n.is_finite() => Some(n),
            _ => {
                self.error(s.span(), path, format!("expected a number, found `{}`", s.as_str()));
                None
            }
        }
    }

    pub fn boolean(&mut self, node: &Node, path: &str) -> Option<bool> {
        let s = self.scalar(node, path)?;
        match s.as_bool() {
            Some(b) => Some(b),
            None => {
                self.error(s.span(), path, format!("expected true or false, found `{}`", s.as_str()));
                None
            }
        }
    }

    /// Reports every key of `map` that is not in `allowed`, with a suggestion.
    pub fn only_keys(&mut self, map: &MarkedMappingNode, path: &str, allowed: &[&str]) {
        for key in map.keys() {
            if !allowed.contains(&key.as_str()) {
                let hint = suggest(key.as_str(), allowed.iter().copied());
                let expected = allowed.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ");
                self.error_hint(
                    key.span(),
                    &child(path, key.as_str()),
                    format!("unknown key `{}`; expected one of {expected}", key.as_str()),
                    hint,
                );
            }
        }
    }

    /// The value of `key`, reporting it when missing.
    pub fn required<'n>(&mut self, map: &'n MarkedMappingNode, key: &str, path: &str) -> Option<&'n Node> {
        match map.get_node(key) {
            Some(node) if !is_null(node) => Some(node),
            _ => {
                self.error(map.span(), &child(path, key), format!("`{key}` is required"));
                None
            }
        }
    }
}

/// The value of `key` unless it is missing or null.
pub fn optional<'n>(map: &'n MarkedMappingNode, key: &str) -> Option<&'n Node> {
    map.get_node(key).filter(|n| !is_null(n))
}

fn load_error(e: &marked_yaml::LoadError) -> (Option<usize>, Option<usize>, String) {
    use marked_yaml::LoadError as E;
    let at = |m: &marked_yaml::Marker| (Some(m.line()), Some(m.column()));
    let ((line, column), message) = match e {
        E::TopLevelMustBeMapping(m) => (at(m), "the file must be a map of settings at the top level".to_owned()),
        E::TopLevelMustBeSequence(m) => (at(m), "the file must be a list at the top level".to_owned()),
        E::UnexpectedAnchor(m) => (at(m), "YAML anchors and aliases are not supported in rule files".to_owned()),
        E::MappingKeyMustBeScalar(m) => (at(m), "map keys must be plain names".to_owned()),
        E::UnexpectedTag(m) => (at(m), "YAML tags are not supported in rule files".to_owned()),
        E::ScanError(m, scan) => (at(m), format!("invalid YAML: {}", scan.info())),
        E::DuplicateKey(inner) => {
            let pos = inner.key.span().start().map(at).unwrap_or((None, None));
            let first = inner.prev_key.span().start().map(|m| format!(" (first at line {})", m.line()));
            (pos, format!("duplicate key `{}`{}", inner.key.as_str(), first.unwrap_or_default()))
        }
    };
    (line, column, message)
}
