//! What the CSV and TSV readers share: the header with columns found by name (case and spacing
//! aside, `--map` overrides first), rows checked against the header's width, and the limits.

use crate::ingest::csv::Records;
use crate::ingest::feed::Rejected;

/// Longest field kept (64 KiB): a description longer than that is cut, not the whole file refused.
pub(crate) const MAX_FIELD_BYTES: usize = 64 << 10;

/// Lines a quoted field may span: exports keep whole HTML descriptions in one field.
const MAX_QUOTED_LINES: usize = 400;

/// A column name as compared: trimmed, lower case, inner runs of white space as one space.
pub(crate) fn norm(name: &str) -> String {
    name.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

/// Tab when the first line has tabs and no comma outside quotes, else comma.
pub(crate) fn sniff_delimiter(text: &str) -> char {
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let mut quoted = false;
    let mut comma = false;
    for c in first.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => comma = true,
            _ => {}
        }
    }
    if first.contains('\t') && !comma { '\t' } else { ',' }
}

/// One data row, its fields already checked against the header's width.
pub(crate) struct Row {
    /// 1-based line where it starts.
    pub line: usize,
    fields: Vec<String>,
}

impl Row {
    /// The trimmed value in column `col`; empty when the column is absent.
    pub fn get(&self, col: Option<usize>) -> &str {
        col.and_then(|c| self.fields.get(c)).map(|s| s.trim()).unwrap_or("")
    }
}

/// A CSV or TSV file opened on its header.
pub(crate) struct Table<'a> {
    /// Header names as written (trimmed).
    pub header: Vec<String>,
    normalised: Vec<String>,
    records: Records<'a>,
    /// Rows that could not be read: bad quoting, wrong width.
    pub rejected: Vec<Rejected>,
}

impl<'a> Table<'a> {
    /// Reads the header of `text` (a BOM allowed) split on `delimiter`; `name` is the format's
    /// name for messages. Err when there is no usable header.
    pub fn open(text: &'a str, delimiter: char, name: &str) -> Result<Self, String> {
        let mut records = Records::new(text)
            .delimiter(delimiter)
            .max_field_bytes(MAX_FIELD_BYTES)
            .max_quoted_lines(MAX_QUOTED_LINES);
        let header = match records.next() {
            Some(Ok(h)) => h.fields,
            Some(Err(e)) => return Err(format!("line {}: bad {name} header: {}", e.line, e.reason)),
            None => return Err(format!("the file is empty; a {name} file starts with a header row")),
        };
        let header: Vec<String> = header.iter().map(|h| h.trim().to_string()).collect();
        if header.iter().all(|h| h.is_empty()) {
            return Err(format!("the first line is not a {name} header (no column names)"));
        }
        Ok(Table {
            normalised: header.iter().map(|h| norm(h)).collect(),
            header,
            records,
            rejected: Vec::new(),
        })
    }

    /// Index of the first column whose name is one of `names` (compared as [`norm`] does).
    pub fn find(&self, names: &[&str]) -> Option<usize> {
        names.iter().find_map(|n| {
            let n = norm(n);
            self.normalised.iter().position(|h| *h == n)
        })
    }

    /// Index of the first column whose normalised name `pred` accepts.
    pub fn find_by(&self, pred: impl Fn(&str) -> bool) -> Option<usize> {
        self.normalised.iter().position(|h| pred(h))
    }

    /// Normalised header names.
    pub fn names(&self) -> &[String] {
        &self.normalised
    }

    /// The column for `field`: the one `map` names for it (Err when the header lacks it), else the
    /// first of `names` present.
    pub fn column(&self, map: &Overrides, field: &str, names: &[&str]) -> Result<Option<usize>, String> {
        match map.get(field) {
            Some(col) => self
                .find(&[col])
                .map(Some)
                .ok_or_else(|| format!("--map {field}={col}: the header has no column `{col}`")),
            None => Ok(self.find(names)),
        }
    }

    /// The next row of the right width; bad ones go to `rejected` and reading goes on.
    pub fn next_row(&mut self) -> Option<Row> {
        let width = self.header.len();
        for r in self.records.by_ref() {
            match r {
                Ok(rec) if rec.fields.len() == width => {
                    return Some(Row {
                        line: rec.line,
                        fields: rec.fields,
                    });
                }
                Ok(rec) => self.rejected.push(Rejected {
                    line: Some(rec.line),
                    id: None,
                    reason: format!("{} fields where the header has {width}", rec.fields.len()),
                }),
                Err(e) => self.rejected.push(Rejected {
                    line: Some(e.line),
                    id: None,
                    reason: e.reason,
                }),
            }
        }
        None
    }
}

/// The `--map field=column` pairs a format accepts, checked against its field names.
pub(crate) struct Overrides<'m> {
    pairs: &'m [(String, String)],
}

impl<'m> Overrides<'m> {
    /// Checks every field in `map` is one of `allowed` (`color` counts as `colour`); `format` names
    /// the format in the message.
    pub fn new(map: &'m [(String, String)], allowed: &[&str], format: &str) -> Result<Self, String> {
        for (field, _) in map {
            let f = canonical_field(field);
            if !allowed.contains(&f.as_str()) {
                return Err(format!(
                    "--map {field}=...: not a field {format} reads; it takes {}",
                    allowed.join(", ")
                ));
            }
        }
        Ok(Overrides { pairs: map })
    }

    /// The column named for `field`, when one is.
    pub fn get(&self, field: &str) -> Option<&'m str> {
        self.pairs
            .iter()
            .rev()
            .find(|(f, _)| canonical_field(f) == field)
            .map(|(_, c)| c.trim())
    }
}

/// A `--map` field name as compared: trimmed, lower case, `color` as `colour`, `-` as `_`.
fn canonical_field(f: &str) -> String {
    let f = f.trim().to_ascii_lowercase().replace('-', "_");
    match f.as_str() {
        "color" => "colour".into(),
        "compareat" => "compare_at".into(),
        _ => f,
    }
}

/// The message for a file whose header lacks a required column.
pub(crate) fn missing(format: &str, column: &str, expected: &[&str]) -> String {
    format!(
        "not a {format} file: no `{column}` column (expected columns such as {})",
        expected.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delimiter_is_tab_only_without_commas_outside_quotes() {
        assert_eq!(sniff_delimiter("id\ttitle\timage_link\n"), '\t');
        assert_eq!(sniff_delimiter("\"a\tb\",c\n"), ',');
        assert_eq!(sniff_delimiter("\"a,b\"\tc\n"), '\t');
        assert_eq!(sniff_delimiter("id,name\n"), ',');
    }

    #[test]
    fn rows_of_another_width_are_rejected_with_their_line() {
        let mut t = Table::open("a,b\r\n1,2\r\n3\r\n4,5,\r\n6,\"x\n", ',', "test").unwrap();
        assert_eq!(t.find(&[" A "]), Some(0));
        let mut lines = Vec::new();
        while let Some(r) = t.next_row() {
            lines.push((r.line, r.get(Some(0)).to_string(), r.get(Some(1)).to_string()));
        }
        assert_eq!(lines, vec![(2, "1".into(), "2".into())]);
        let rejected: Vec<_> = t.rejected.iter().map(|r| r.line).collect();
        assert_eq!(rejected, vec![Some(3), Some(4), Some(5)]);
        assert!(t.rejected[0].reason.contains("1 fields where the header has 2"));
        assert!(t.rejected[1].reason.contains("3 fields where the header has 2"));
        assert!(t.rejected[2].reason.contains("unterminated"));
    }

    #[test]
    fn overrides_name_unknown_fields_and_missing_columns() {
        let map = vec![("colour".to_string(), "Farbe".to_string())];
        let o = Overrides::new(&map, &["id", "colour"], "test").unwrap();
        let t = Table::open("ID,Farbe\n", ',', "test").unwrap();
        assert_eq!(t.column(&o, "colour", &["color"]).unwrap(), Some(1));
        let bad = vec![("hue".to_string(), "x".to_string())];
        let e = Overrides::new(&bad, &["id", "colour"], "test").err().unwrap();
        assert!(e.contains("hue") && e.contains("id, colour"), "{e}");
        let gone = vec![("colour".to_string(), "Couleur".to_string())];
        let o = Overrides::new(&gone, &["colour"], "test").unwrap();
        assert!(t.column(&o, "colour", &[]).unwrap_err().contains("`Couleur`"));
    }
}
