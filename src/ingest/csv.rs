//! A strict, line-aware RFC 4180 reader.
//!
//! Strict because a stray or unterminated quote must cost one row, not the rest of the file (a
//! lenient reader swallows everything up to the next quote); line-aware so every problem names its
//! line.

/// One parsed record and where it started.
#[derive(Debug, PartialEq, Eq)]
pub struct Record {
    /// 1-based physical line of the record's first character.
    pub line: usize,
    /// The fields, unquoted.
    pub fields: Vec<String>,
}

/// A record that could not be parsed.
#[derive(Debug, PartialEq, Eq)]
pub struct BadRecord {
    /// 1-based physical line.
    pub line: usize,
    /// What is wrong with it.
    pub reason: String,
}

/// Splits `text` into records; bad ones are returned as errors and reading continues on the next line.
///
/// The first record sets the expected width: a later record that spans several lines and has
/// another width is taken for a broken quote, reported on its first line, and reading resumes
/// on the line after it so the rows it swallowed are kept.
pub fn records(text: &str) -> Vec<Result<Record, BadRecord>> {
    Records::new(text).collect()
}

/// The records of `text` one at a time, so an import never holds them all at once.
pub struct Records<'a> {
    text: &'a str,
    expected: Option<usize>,
    pos: usize,
    line: usize,
    dialect: Dialect,
}

/// How fields are separated and bounded; [`Records::new`] reads RFC 4180 with commas.
#[derive(Debug, Clone, Copy)]
struct Dialect {
    delimiter: char,
    max_field_bytes: usize,
    max_quoted_lines: usize,
}

impl Default for Dialect {
    fn default() -> Self {
        Dialect {
            delimiter: ',',
            max_field_bytes: usize::MAX,
            max_quoted_lines: 5,
        }
    }
}

impl<'a> Records<'a> {
    /// Starts reading `text` (a UTF-8 byte order mark is skipped).
    pub fn new(text: &'a str) -> Self {
        Records {
            text: text.strip_prefix('\u{feff}').unwrap_or(text),
            expected: None,
            pos: 0,
            line: 1,
            dialect: Dialect::default(),
        }
    }

    /// Splits fields on `delimiter` instead of a comma (`'\t'` for tab-separated text). With any
    /// delimiter but a comma, a quote inside an unquoted field is kept as a character: tab-separated
    /// feeds write `5" heel` bare, and there it cannot be mistaken for the end of a field.
    pub fn delimiter(mut self, delimiter: char) -> Self {
        self.dialect.delimiter = delimiter;
        self
    }

    /// Keeps at most `bytes` of each field (cut at a character boundary, the rest skipped), so
    /// one absurd field cannot multiply the memory a file takes.
    pub fn max_field_bytes(mut self, bytes: usize) -> Self {
        self.dialect.max_field_bytes = bytes;
        self
    }

    /// Lets a quoted field span up to `lines` lines (5 by default) before it is taken for a
    /// missing quote: shop exports keep whole HTML descriptions, line breaks and all, in one field.
    pub fn max_quoted_lines(mut self, lines: usize) -> Self {
        self.dialect.max_quoted_lines = lines;
        self
    }

    fn next_line(&mut self) {
        self.pos = self.text[self.pos..]
            .find('\n')
            .map(|i| self.pos + i + 1)
            .unwrap_or(self.text.len());
        self.line += 1;
    }
}

impl Iterator for Records<'_> {
    type Item = Result<Record, BadRecord>;

    fn next(&mut self) -> Option<Self::Item> {
        while self.pos < self.text.len() {
            let line = self.line;
            match parse_record(self.text, self.pos, &self.dialect) {
                Ok((fields, _, lines)) if lines > 1 && self.expected.is_some_and(|n| n != fields.len()) => {
                    self.next_line();
                    return Some(Err(BadRecord {
                        line,
                        reason: format!("quoted field runs over {lines} lines; probably a missing quote"),
                    }));
                }
                Ok((fields, next, lines)) => {
                    self.pos = next;
                    self.line += lines;
                    // Blank lines are not records.
                    if !(fields.len() == 1 && fields[0].is_empty()) {
                        self.expected.get_or_insert(fields.len());
                        return Some(Ok(Record { line, fields }));
                    }
                }
                Err(reason) => {
                    // Resume on the next physical line so one bad quote costs one row.
                    self.next_line();
                    return Some(Err(BadRecord { line, reason }));
                }
            }
        }
        None
    }
}

/// Appends `s` to `field` while the field stays within `max` bytes.
fn push_capped(field: &mut String, s: &str, max: usize) {
    let room = max.saturating_sub(field.len());
    if s.len() <= room {
        field.push_str(s);
    } else {
        let mut cut = room;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        field.push_str(&s[..cut]);
    }
}

/// Parses one record starting at `start`: fields, the offset after it, and physical lines used.
fn parse_record(text: &str, start: usize, dialect: &Dialect) -> Result<(Vec<String>, usize, usize), String> {
    let b = text.as_bytes();
    let delim = dialect.delimiter;
    let mut fields = Vec::new();
    let mut i = start;
    let mut lines = 1;
    loop {
        let mut field = String::new();
        if i < b.len() && b[i] == b'"' {
            i += 1;
            let open_line = lines;
            loop {
                let Some(rel) = text[i..].find('"') else {
                    return Err(format!(
                        "unterminated quoted field (opened on this line, field {})",
                        fields.len() + 1
                    ));
                };
                let chunk = &text[i..i + rel];
                lines += chunk.matches('\n').count();
                // A quoted field that runs over many lines is almost surely a missing quote.
                if lines - open_line > dialect.max_quoted_lines {
                    return Err(format!("unterminated quoted field (field {})", fields.len() + 1));
                }
                push_capped(&mut field, chunk, dialect.max_field_bytes);
                i += rel + 1;
                if i < b.len() && b[i] == b'"' {
                    push_capped(&mut field, "\"", dialect.max_field_bytes);
                    i += 1;
                } else {
                    break;
                }
            }
            match b.get(i) {
                None | Some(b'\n') => {}
                Some(b'\r') if b.get(i + 1).is_none_or(|c| *c == b'\n') => {}
                Some(_) if text[i..].starts_with(delim) => {}
                Some(_) => {
                    return Err(format!(
                        "unexpected text after the closing quote of field {}",
                        fields.len() + 1
                    ));
                }
            }
        } else {
            let end = text[i..].find([delim, '\n']).map(|r| i + r).unwrap_or(b.len());
            let raw = text[i..end].strip_suffix('\r').unwrap_or(&text[i..end]);
            if delim == ',' && raw.contains('"') {
                return Err(format!("stray quote inside unquoted field {}", fields.len() + 1));
            }
            push_capped(&mut field, raw, dialect.max_field_bytes);
            i = end;
        }
        fields.push(field);
        if text[i..].starts_with(delim) {
            i += delim.len_utf8();
            continue;
        }
        match b.get(i) {
            Some(b'\r') => {
                i += 1;
                if b.get(i) == Some(&b'\n') {
                    i += 1;
                }
                return Ok((fields, i, lines));
            }
            Some(b'\n') => return Ok((fields, i + 1, lines)),
            None => return Ok((fields, i, lines)),
            Some(_) => return Err("malformed field".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> Vec<Vec<String>> {
        records(text).into_iter().map(|r| r.unwrap().fields).collect()
    }

    #[test]
    fn plain_quoted_escaped_and_crlf() {
        assert_eq!(
            ok("a,b\r\n1,\"x, y\"\r\n2,\"say \"\"hi\"\"\"\n"),
            vec![vec!["a", "b"], vec!["1", "x, y"], vec!["2", "say \"hi\""]]
        );
    }

    #[test]
    fn bom_blank_lines_and_missing_final_newline() {
        assert_eq!(ok("\u{feff}id\n\n7"), vec![vec!["id"], vec!["7"]]);
    }

    #[test]
    fn quoted_newline_spans_lines_and_keeps_line_numbers() {
        let r = records("h\n\"a\nb\"\nc\n");
        assert_eq!(r[1].as_ref().unwrap().fields, vec!["a\nb"]);
        assert_eq!(r[2].as_ref().unwrap().line, 4);
    }

    #[test]
    fn bad_quotes_cost_one_line() {
        let r = records("h,i\n1,\"open\n2,ok\n3,a\"b\n4,\"x\"y\n5,fine\n");
        let lines: Vec<_> = r
            .iter()
            .map(|r| {
                (
                    r.is_ok(),
                    match r {
                        Ok(x) => x.line,
                        Err(e) => e.line,
                    },
                )
            })
            .collect();
        assert_eq!(
            lines,
            vec![(true, 1), (false, 2), (true, 3), (false, 4), (false, 5), (true, 6)]
        );
        assert!(r[3].as_ref().unwrap_err().reason.contains("stray quote"));
    }

    #[test]
    fn a_missing_quote_that_closes_lines_later_does_not_swallow_rows() {
        let r = records("a,b,c\n1,\"open,q\n2,x,y\n3,\"\n");
        assert!(r[1].as_ref().unwrap_err().reason.contains("missing quote"), "{r:?}");
        assert_eq!(r[2].as_ref().unwrap().fields, vec!["2", "x", "y"]);
        assert!(r[3].is_err());
    }

    fn read(r: Records) -> Vec<Result<Vec<String>, usize>> {
        r.map(|r| r.map(|x| x.fields).map_err(|e| e.line)).collect()
    }

    #[test]
    fn tab_delimiter_keeps_bare_quotes_and_commas() {
        let text = "id\ttitle\r\n1\tTee, 5\" print\r\n2\t\"quoted\ttab\"\r\n3\t\"x\"y\n";
        let r = read(Records::new(text).delimiter('\t'));
        assert_eq!(r[1], Ok(vec!["1".to_string(), "Tee, 5\" print".to_string()]));
        assert_eq!(r[2], Ok(vec!["2".to_string(), "quoted\ttab".to_string()]));
        assert_eq!(r[3], Err(4));
        // Commas stay strict about quotes.
        assert!(records("a\n5\" x\n")[1].is_err());
    }

    #[test]
    fn fields_are_capped_at_a_character_boundary() {
        let text = "a,b\nxéyz,\"qqqqq\"\"q\"\n";
        let r = read(Records::new(text).max_field_bytes(3));
        assert_eq!(r[0], Ok(vec!["a".to_string(), "b".to_string()]));
        assert_eq!(r[1], Ok(vec!["xé".to_string(), "qqq".to_string()]));
    }

    #[test]
    fn quoted_fields_may_span_more_lines_when_asked() {
        let text = "a,b\n1,\"l1\nl2\nl3\nl4\nl5\nl6\nl7\"\n2,x\n";
        assert!(records(text)[1].is_err());
        let r = read(Records::new(text).max_quoted_lines(10));
        assert_eq!(
            r[1],
            Ok(vec!["1".to_string(), "l1\nl2\nl3\nl4\nl5\nl6\nl7".to_string()])
        );
        assert_eq!(r[2], Ok(vec!["2".to_string(), "x".to_string()]));
    }
}
