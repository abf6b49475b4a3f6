//! What the filters pass reads in a Sieve script (RFC 5228) without running it: the
//! extensions it requires, and the folders it files into, rewritten by the mail's folder
//! mapping. A small lexer (strings with escapes, `text:` multi-line strings, both comment
//! forms, tags, string lists) finds the arguments; everything else is left byte for byte.

use crate::folder_map::{FolderMapping, NamingScheme};

/// Which target folder a folder named in a script becomes: the mail's mappings first, then
/// the two sides' prefix and separator for folders the mail did not see.
#[derive(Debug, Clone, Default)]
pub struct FolderRewrite {
    /// Source name -> target name, as the mail pass mapped them (UTF-8).
    pub pairs: Vec<(String, String)>,
    pub source_prefix: String,
    pub source_delimiter: Option<char>,
    pub target_prefix: String,
    pub target_delimiter: Option<char>,
}

impl FolderRewrite {
    /// From the mail pass's mappings and both naming schemes.
    pub fn new(mappings: &[FolderMapping], source: &NamingScheme, target: &NamingScheme) -> Self {
        Self {
            pairs: mappings
                .iter()
                .map(|m| (m.source_name.clone(), m.target_name.clone()))
                .collect(),
            source_prefix: source.prefix.clone(),
            source_delimiter: source.delimiter,
            target_prefix: target.prefix.clone(),
            target_delimiter: target.delimiter,
        }
    }

    /// The target's name of `name`, when it differs.
    pub fn target_name(&self, name: &str) -> Option<String> {
        if name.eq_ignore_ascii_case("INBOX") {
            return None;
        }
        if let Some((_, to)) = self.pairs.iter().find(|(from, _)| from == name) {
            return (to != name).then(|| to.clone());
        }
        let (Some(from), Some(to)) = (self.source_delimiter, self.target_delimiter) else {
            return None;
        };
        let below = match name.get(..self.source_prefix.len()) {
            Some(head)
                if !self.source_prefix.is_empty()
                    && head.eq_ignore_ascii_case(&self.source_prefix)
                    && name.len() > self.source_prefix.len() =>
            {
                &name[self.source_prefix.len()..]
            }
            _ => name,
        };
        let parts: Vec<String> = below
            .split(from)
            .map(|part| part.replace(to, "_"))
            .collect();
        let mapped = format!("{}{}", self.target_prefix, parts.join(&to.to_string()));
        (mapped != name).then_some(mapped)
    }
}

/// A script with its folder names rewritten.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewritten {
    pub content: Vec<u8>,
    /// `(from, to)` per rewritten argument, in script order.
    pub changes: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Identifier(String),
    Tag(String),
    Number,
    /// A quoted or multi-line string: its byte range in the script and its value.
    String {
        start: usize,
        end: usize,
        value: Vec<u8>,
    },
    Punct(u8),
}

/// Splits a script into tokens; a script that does not lex (an unterminated string or
/// comment) gives the tokens up to the fault: nothing after it is rewritten.
fn tokens(script: &[u8]) -> Vec<Token> {
    let mut out = Vec::new();
    let mut i = 0;
    let n = script.len();
    while i < n {
        let b = script[i];
        match b {
            b' ' | b'\t' | b'\r' | b'\n' => i += 1,
            b'#' => {
                while i < n && script[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if script.get(i + 1) == Some(&b'*') => match find(&script[i + 2..], b"*/") {
                Some(at) => i += 2 + at + 2,
                None => return out,
            },
            b'"' => {
                let start = i;
                let mut value = Vec::new();
                i += 1;
                loop {
                    match script.get(i) {
                        None => return out,
                        Some(b'"') => {
                            i += 1;
                            break;
                        }
                        Some(b'\\') => {
                            if let Some(&c) = script.get(i + 1) {
                                value.push(c);
                            }
                            i += 2;
                        }
                        Some(&c) => {
                            value.push(c);
                            i += 1;
                        }
                    }
                }
                out.push(Token::String {
                    start,
                    end: i.min(n),
                    value,
                });
            }
            b':' => {
                let start = i + 1;
                i += 1;
                while i < n && (script[i].is_ascii_alphanumeric() || script[i] == b'_') {
                    i += 1;
                }
                out.push(Token::Tag(
                    String::from_utf8_lossy(&script[start..i]).to_ascii_lowercase(),
                ));
            }
            b'0'..=b'9' => {
                while i < n && script[i].is_ascii_alphanumeric() {
                    i += 1;
                }
                out.push(Token::Number);
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < n && (script[i].is_ascii_alphanumeric() || script[i] == b'_') {
                    i += 1;
                }
                let word = String::from_utf8_lossy(&script[start..i]).to_ascii_lowercase();
                if word == "text" && script.get(i) == Some(&b':') {
                    // `text:` up to the end of its line, then lines up to a lone `.`;
                    // a leading `..` stands for `.`.
                    let Some(eol) = find(&script[i..], b"\n") else {
                        return out;
                    };
                    let mut j = i + eol + 1;
                    let mut value = Vec::new();
                    loop {
                        let line_end = match find(&script[j..], b"\n") {
                            Some(e) => j + e + 1,
                            None => return out,
                        };
                        let line = &script[j..line_end];
                        let bare = line.strip_suffix(b"\n").unwrap_or(line);
                        let bare = bare.strip_suffix(b"\r").unwrap_or(bare);
                        if bare == b"." {
                            j = line_end;
                            break;
                        }
                        value.extend_from_slice(
                            line.strip_prefix(b".")
                                .filter(|l| l.starts_with(b"."))
                                .unwrap_or(line),
                        );
                        j = line_end;
                    }
                    out.push(Token::String {
                        start,
                        end: j,
                        value,
                    });
                    i = j;
                } else {
                    out.push(Token::Identifier(word));
                }
            }
            _ => {
                out.push(Token::Punct(b));
                i += 1;
            }
        }
    }
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The strings of the argument at `tokens[i]`: one string or a `[...]` list; with the index
/// after it.
fn string_argument(tokens: &[Token], i: usize) -> (Vec<usize>, usize) {
    match tokens.get(i) {
        Some(Token::String { .. }) => (vec![i], i + 1),
        Some(Token::Punct(b'[')) => {
            let mut found = Vec::new();
            let mut j = i + 1;
            while let Some(token) = tokens.get(j) {
                j += 1;
                match token {
                    Token::String { .. } => found.push(j - 1),
                    Token::Punct(b']') => break,
                    _ => {}
                }
            }
            (found, j)
        }
        _ => (Vec::new(), i),
    }
}

/// The extensions a script's `require` commands name, lowercased, in order, once each.
pub fn required_extensions(script: &[u8]) -> Vec<String> {
    let tokens = tokens(script);
    let mut out: Vec<String> = Vec::new();
    for (i, token) in tokens.iter().enumerate() {
        if token == &Token::Identifier("require".into()) {
            let (strings, _) = string_argument(&tokens, i + 1);
            for s in strings {
                if let Token::String { value, .. } = &tokens[s] {
                    let name = String::from_utf8_lossy(value).to_ascii_lowercase();
                    if !out.contains(&name) {
                        out.push(name);
                    }
                }
            }
        }
    }
    out
}

/// The mailbox arguments of `fileinto` (after its tags: `:flags` takes a value, `:copy` and
/// `:create` none, `:specialuse` one) and of the `mailboxexists` test.
fn folder_arguments(tokens: &[Token]) -> Vec<usize> {
    let mut out = Vec::new();
    for (i, token) in tokens.iter().enumerate() {
        let Token::Identifier(word) = token else {
            continue;
        };
        match word.as_str() {
            "fileinto" => {
                let mut j = i + 1;
                while let Some(Token::Tag(tag)) = tokens.get(j) {
                    j += 1;
                    if tag == "flags" || tag == "specialuse" {
                        j = string_argument(tokens, j).1;
                    }
                }
                if let Some(Token::String { .. }) = tokens.get(j) {
                    out.push(j);
                }
            }
            "mailboxexists" => out.extend(string_argument(tokens, i + 1).0),
            _ => {}
        }
    }
    out
}

/// The script with every folder it files into (or tests for) renamed as `rewrite` says.
pub fn rewrite_folders(script: &[u8], rewrite: &FolderRewrite) -> Rewritten {
    let tokens = tokens(script);
    let mut content = Vec::with_capacity(script.len());
    let mut changes = Vec::new();
    let mut copied = 0;
    for i in folder_arguments(&tokens) {
        let Token::String { start, end, value } = &tokens[i] else {
            continue;
        };
        // A name with a line break (a `text:` string) is no folder anyone has: left alone.
        let Ok(name) = std::str::from_utf8(value) else {
            continue;
        };
        if name.contains(['\r', '\n']) {
            continue;
        }
        if let Some(to) = rewrite.target_name(name) {
            content.extend_from_slice(&script[copied..*start]);
            // Sieve quotes strings as IMAP does: `"` and `\` escaped.
            content.extend_from_slice(&mailferry_imap::session::quote(to.as_bytes()));
            copied = *end;
            changes.push((name.to_string(), to));
        }
    }
    content.extend_from_slice(&script[copied..]);
    Rewritten { content, changes }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dot_to_slash() -> FolderRewrite {
        FolderRewrite {
            pairs: vec![
                ("INBOX.Sent".into(), "Sent Items".into()),
                ("INBOX.Archive".into(), "Archive".into()),
            ],
            source_prefix: "INBOX.".into(),
            source_delimiter: Some('.'),
            target_prefix: String::new(),
            target_delimiter: Some('/'),
        }
    }

    #[test]
    fn fileinto_and_mailboxexists_follow_the_mapping_and_nothing_else_changes() {
        let script = br#"require ["fileinto", "mailbox", "imap4flags"]; # "INBOX.Archive" stays
/* fileinto "INBOX.Archive"; stays too */
if header :contains "subject" "INBOX.Archive" {
  fileinto :flags ["\\Seen"] :create "INBOX.Archive";
} elsif mailboxexists ["INBOX.Sent", "INBOX"] {
  fileinto :copy "INBOX.Lists.rust-lang";
}
fileinto text:
INBOX.Sent
.
;
keep;
"#;
        let out = rewrite_folders(script, &dot_to_slash());
        let text = String::from_utf8(out.content).unwrap();
        assert!(text.contains(r#"# "INBOX.Archive" stays"#));
        assert!(text.contains(r#"/* fileinto "INBOX.Archive"; stays too */"#));
        assert!(text.contains(r#":contains "subject" "INBOX.Archive""#));
        assert!(text.contains(r#"fileinto :flags ["\\Seen"] :create "Archive";"#));
        assert!(text.contains(r#"mailboxexists ["Sent Items", "INBOX"]"#));
        assert!(text.contains(r#"fileinto :copy "Lists/rust-lang";"#));
        assert_eq!(
            out.changes,
            vec![
                ("INBOX.Archive".to_string(), "Archive".to_string()),
                ("INBOX.Sent".to_string(), "Sent Items".to_string()),
                (
                    "INBOX.Lists.rust-lang".to_string(),
                    "Lists/rust-lang".to_string()
                ),
            ]
        );
        // The multi-line string's value is "INBOX.Sent\n": no folder, left as it is.
        assert!(text.contains("fileinto text:\nINBOX.Sent\n.\n;"));
        assert_eq!(
            required_extensions(script),
            vec!["fileinto", "mailbox", "imap4flags"]
        );
    }

    #[test]
    fn same_naming_on_both_sides_changes_nothing() {
        let same = FolderRewrite {
            source_delimiter: Some('/'),
            target_delimiter: Some('/'),
            ..FolderRewrite::default()
        };
        let script = b"require \"fileinto\";\r\nfileinto \"Work/Reports \\\"Q1\\\"\";\r\n";
        let out = rewrite_folders(script, &same);
        assert_eq!(out.content, script.to_vec());
        assert!(out.changes.is_empty());
    }

    #[test]
    fn quotes_and_backslashes_in_a_new_name_are_escaped() {
        let rw = FolderRewrite {
            pairs: vec![("a".into(), "b \"c\\d".into())],
            ..FolderRewrite::default()
        };
        let out = rewrite_folders(b"fileinto \"a\";", &rw);
        assert_eq!(out.content, b"fileinto \"b \\\"c\\\\d\";".to_vec());
    }

    #[test]
    fn a_broken_script_is_left_as_it_is_after_the_fault() {
        let rw = dot_to_slash();
        let script = b"fileinto \"INBOX.Archive\"; fileinto \"INBOX.Sent";
        let out = rewrite_folders(script, &rw);
        assert_eq!(
            out.content,
            b"fileinto \"Archive\"; fileinto \"INBOX.Sent".to_vec()
        );
        assert!(required_extensions(b"require [\"a\", ").contains(&"a".to_string()));
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_neither_panic_nor_change_without_a_folder(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
            let out = rewrite_folders(&bytes, &dot_to_slash());
            if out.changes.is_empty() {
                proptest::prop_assert_eq!(out.content, bytes.clone());
            }
            let _ = required_extensions(&bytes);
        }
    }
}
