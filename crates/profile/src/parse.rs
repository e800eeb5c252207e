//! Line-level parsing of one profile file into raw sections.
//!
//! This stage only checks the syntax of each line. Section names are classified, validated and
//! merged later (see `merge.rs`), so the raw output still contains sections that the merge
//! stage ignores, such as `[profile foo!bar]` or properties with invalid names.

use std::path::Path;

use crate::Error;

/// The only characters that count as whitespace in profile files.
///
/// `str::trim` also strips characters such as U+00A0, which the AWS SDKs keep as part of a value.
pub(crate) const WHITESPACE: &[char] = &[' ', '\t'];
const COMMENT: &[char] = &['#', ';'];

/// A `[...]` section and the properties that follow it, in file order.
#[derive(Debug)]
pub(crate) struct RawSection {
    /// Text between the brackets, trimmed, with any trailing comment removed.
    pub header: String,
    pub line: usize,
    pub properties: Vec<RawProperty>,
}

#[derive(Debug)]
pub(crate) struct RawProperty {
    /// Name as written, before case folding and validation.
    pub key: String,
    /// Value with continuation lines joined by `\n`.
    pub value: String,
    pub line: usize,
    /// Whether the definition line had an empty value, so the following indented lines are
    /// `name = value` sub-properties.
    pub nested: bool,
}

/// Parser state between lines.
enum State {
    /// No section header seen yet: only blank lines and comments are valid.
    Starting,
    /// Inside a section, before its first property: a continuation line is invalid.
    ReadingSection,
    /// After a property line: an indented line continues the property at `index` of the
    /// current section.
    ReadingProperty { index: usize, nested: bool },
}

/// Parses `text` into sections, or returns the first syntax error with its 1-based line number.
pub(crate) fn parse_file(text: &str, path: &Path) -> Result<Vec<RawSection>, Error> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut parser = Parser {
        path,
        sections: Vec::new(),
        state: State::Starting,
        line: 0,
    };
    for (index, line) in text.lines().enumerate() {
        parser.line = index + 1;
        parser.read_line(line)?;
    }
    Ok(parser.sections)
}

struct Parser<'a> {
    path: &'a Path,
    sections: Vec<RawSection>,
    state: State,
    line: usize,
}

impl Parser<'_> {
    fn read_line(&mut self, line: &str) -> Result<(), Error> {
        if line.trim_matches(WHITESPACE).is_empty() || line.starts_with(COMMENT) {
            return Ok(());
        }
        if line.starts_with('[') {
            self.read_section_header(line)
        } else if line.starts_with(WHITESPACE) {
            self.read_continuation(line)
        } else {
            self.read_property(line)
        }
    }

    fn read_section_header(&mut self, line: &str) -> Result<(), Error> {
        // A comment character ends a header line even without whitespace before it.
        let line = strip_comment(line, false);
        let Some(inner) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) else {
            return Err(self.error(
                "section header does not end with ']'; write it as [profile NAME] or [default], \
                 with only a comment after the ']'",
            ));
        };
        self.sections.push(RawSection {
            header: inner.trim_matches(WHITESPACE).to_string(),
            line: self.line,
            properties: Vec::new(),
        });
        self.state = State::ReadingSection;
        Ok(())
    }

    fn read_property(&mut self, line: &str) -> Result<(), Error> {
        if matches!(self.state, State::Starting) {
            return Err(self.error(
                "property appears before any section header; add a [profile NAME] or [default] \
                 line above it",
            ));
        }
        let (key, value) = split_property(line).map_err(|problem| {
            self.error(match problem {
                PropertyProblem::NoEquals => {
                    "expected a property of the form `name = value`, but the line has no '='; \
                     add the '=' or turn the line into a comment with '#'"
                }
                PropertyProblem::NoName => {
                    "property has no name before the '='; write it as `name = value`"
                }
            })
        })?;
        let nested = value.is_empty();
        let property = RawProperty {
            key: key.to_string(),
            value: value.to_string(),
            line: self.line,
            nested,
        };
        let section = self.current_section();
        section.properties.push(property);
        let index = section.properties.len() - 1;
        self.state = State::ReadingProperty { index, nested };
        Ok(())
    }

    fn read_continuation(&mut self, line: &str) -> Result<(), Error> {
        let (index, nested) = match self.state {
            State::Starting => {
                return Err(self.error(
                    "indented line appears before any section header; add a [profile NAME] or \
                     [default] line above it, or remove the indentation",
                ))
            }
            State::ReadingSection => {
                return Err(self.error(
                    "indented line continues no property because no `name = value` line comes \
                     before it in this section; remove the indentation",
                ))
            }
            State::ReadingProperty { index, nested } => (index, nested),
        };
        if nested {
            split_property(line).map_err(|problem| {
                self.error(match problem {
                    PropertyProblem::NoEquals => {
                        "expected a sub-property of the form `name = value`, but the indented \
                         line has no '='; add the '=' or give the parent property a value on \
                         its own line"
                    }
                    PropertyProblem::NoName => {
                        "sub-property has no name before the '='; write it as `name = value`"
                    }
                })
            })?;
        }
        // The SDKs keep comment characters in continuation lines as part of the value.
        let text = line.trim_matches(WHITESPACE);
        let property = &mut self.current_section().properties[index];
        property.value.push('\n');
        property.value.push_str(text);
        Ok(())
    }

    /// Returns the section being read. Callers check first that the state is not `Starting`,
    /// which is the only state without a section.
    fn current_section(&mut self) -> &mut RawSection {
        self.sections
            .last_mut()
            .expect("a section header precedes every property")
    }

    fn error(&self, message: &str) -> Error {
        Error::Syntax {
            file: self.path.to_path_buf(),
            line: self.line,
            message: message.to_string(),
        }
    }
}

enum PropertyProblem {
    NoEquals,
    NoName,
}

/// Splits a `name = value` line into its trimmed name and value after removing a comment.
///
/// In a property line, `#` and `;` start a comment only after a space or tab, so
/// `value#x` keeps the `#x`.
fn split_property(line: &str) -> Result<(&str, &str), PropertyProblem> {
    let line = strip_comment(line, true);
    let (key, value) = line.split_once('=').ok_or(PropertyProblem::NoEquals)?;
    let key = key.trim_matches(WHITESPACE);
    if key.is_empty() {
        return Err(PropertyProblem::NoName);
    }
    Ok((key, value.trim_matches(WHITESPACE)))
}

/// Trims `line` and cuts it at the first comment character, which must follow a space or tab
/// when `needs_whitespace` is set.
fn strip_comment(line: &str, needs_whitespace: bool) -> &str {
    let line = line.trim_matches(WHITESPACE);
    let mut after_whitespace = false;
    for (index, character) in line.char_indices() {
        if COMMENT.contains(&character) && (after_whitespace || !needs_whitespace) {
            return line[..index].trim_matches(WHITESPACE);
        }
        after_whitespace = WHITESPACE.contains(&character);
    }
    line
}
