//! Secrets in a column whose header names them: CSV/TSV exports (AWS's IAM
//! `credentials.csv`: `User name,Password,Access key ID,Secret access key`), and the
//! tables database clients print (`psql`'s ` id | password_hash`, `mysql`'s
//! `| id | password |`, Markdown).
//!
//! Driven by the scanner's keyword pass like [`super::assign`]: a keyword in a line that
//! splits into header-like cells, where the keyword's cell is a sensitive name
//! ([`SensitiveKeys`]) and the line is the first row of its table. Then that column is
//! masked in each following row with as many cells, until a row that has not (a blank
//! line, `(3 rows)`). Bounded: rows and bytes per table.

use super::{keys::SensitiveKeys, values::is_not_a_secret};

const MAX_ROWS: usize = 10_000;
const MAX_LINE: usize = 8192;
const MAX_CELLS: usize = 64;

/// Cells of one line: byte ranges within the line.
struct Cells {
    ranges: [(usize, usize); MAX_CELLS],
    count: usize,
}

fn split(line: &[u8], delim: u8) -> Option<Cells> {
    let mut cells = Cells {
        ranges: [(0, 0); MAX_CELLS],
        count: 0,
    };
    let mut start = 0;
    let mut quoted = false;
    for (i, &b) in line.iter().enumerate() {
        // A quote opens a CSV field only at the field's start.
        let at_start = line[start..i].iter().all(u8::is_ascii_whitespace);
        if b == b'"' && delim != b'|' && (quoted || at_start) {
            quoted = !quoted;
        } else if b == delim && !quoted {
            if cells.count == MAX_CELLS {
                return None;
            }
            cells.ranges[cells.count] = (start, i);
            cells.count += 1;
            start = i + 1;
        }
    }
    if cells.count == MAX_CELLS {
        return None;
    }
    cells.ranges[cells.count] = (start, line.len());
    cells.count += 1;
    Some(cells)
}

/// A cell's content without blanks and CSV quotes.
fn trim(line: &[u8], (mut start, mut end): (usize, usize)) -> (usize, usize) {
    while start < end && line[start].is_ascii_whitespace() {
        start += 1;
    }
    while end > start && line[end - 1].is_ascii_whitespace() {
        end -= 1;
    }
    if end - start >= 2 && line[start] == b'"' && line[end - 1] == b'"' {
        (start + 1, end - 1)
    } else {
        (start, end)
    }
}

/// A line that only draws the table: `----+----`, `+----+`, `|---|:--|`.
fn is_rule_line(line: &[u8]) -> bool {
    line.iter().any(|&b| b == b'-' || b == b'=')
        && line
            .iter()
            .all(|b| matches!(b, b'-' | b'+' | b'|' | b'=' | b':' | b' ' | b'\t' | b'\r'))
}

/// The line around `at`, if it is no longer than [`MAX_LINE`] (a long line is no table
/// row, and looking further for its ends would make masking quadratic).
fn line_at(text: &[u8], at: usize) -> Option<(usize, usize)> {
    let from = at.saturating_sub(MAX_LINE);
    let start = match text[from..at].iter().rposition(|&b| b == b'\n') {
        Some(p) => from + p + 1,
        None if from == 0 => 0,
        None => return None,
    };
    let to = text.len().min(at + MAX_LINE);
    let end = match text[at..to].iter().position(|&b| b == b'\n') {
        Some(p) => at + p,
        None if to == text.len() => text.len(),
        None => return None,
    };
    Some((start, end))
}

/// A cheap first look, so that prose costs a few bytes: the keyword's word ends its cell
/// (a separator or the line's end follows, after blanks or a closing quote), and a
/// separator or the line's start comes before it within a short cell.
fn in_a_cell(text: &[u8], at: usize) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-');
    let mut end = at;
    while end < text.len() && end - at < 64 && word(text[end]) {
        end += 1;
    }
    while end < text.len() && matches!(text[end], b' ' | b'"' | b'`' | b']') {
        end += 1;
    }
    if !matches!(
        text.get(end),
        None | Some(b',' | b'\t' | b'|' | b';' | b')' | b'\n' | b'\r')
    ) {
        return false;
    }
    let from = at.saturating_sub(64);
    match text[from..at]
        .iter()
        .rposition(|&b| !(word(b) || matches!(b, b' ' | b'"' | b'`' | b'[')))
    {
        Some(p) => matches!(text[from + p], b',' | b'\t' | b'|' | b';' | b'(' | b'\n'),
        None => from == 0,
    }
}

fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// If the keyword at `at` heads a secret column, calls `mask` with each of its values.
/// Returns the end of the header line (later keywords on it are looked at too, for a
/// second secret column, by the caller calling again).
pub fn column(keys: &SensitiveKeys, text: &[u8], at: usize, mut mask: impl FnMut(usize, usize)) {
    if !in_a_cell(text, at) {
        return;
    }
    let Some((line_start, line_end)) = line_at(text, at) else {
        return;
    };
    let line = strip_cr(&text[line_start..line_end]);
    if line.len() > MAX_LINE {
        return;
    }
    if sql(keys, text, line_start, line_end, at, &mut mask) {
        return;
    }
    let Some(delim) = [b'\t', b'|', b',', b';']
        .into_iter()
        .find(|d| line.contains(d))
    else {
        return;
    };
    let Some(header) = split(line, delim) else {
        return;
    };
    let hit = at - line_start;
    let Some(column) = (0..header.count).find(|&i| {
        let (s, e) = header.ranges[i];
        s <= hit && hit < e
    }) else {
        return;
    };
    // A table printed inside a JSON string in a log line: `output: "id,password\n…`.
    let mut header = header;
    if let Some(quote) = line[header.ranges[0].0..header.ranges[0].1]
        .iter()
        .rposition(|&b| b == b'"')
        && line[header.ranges[0].0] != b'"'
    {
        header.ranges[0].0 += quote + 1;
    }
    let header_like = (0..header.count).all(|i| {
        let (s, e) = trim(line, header.ranges[i]);
        let cell = &line[s..e];
        let edge = i == 0 || i + 1 == header.count;
        (edge || !cell.is_empty())
            && cell.len() <= 64
            && !cell
                .iter()
                .any(|b| matches!(b, b':' | b'=' | b'{' | b'}' | b'(' | b'"'))
            && cell.iter().filter(|&&b| b == b' ').count() < 5
    });
    let (s, e) = trim(line, header.ranges[column]);
    let Ok(name) = std::str::from_utf8(&line[s..e]) else {
        return;
    };
    if header.count < 2 || !header_like || !keys.is_sensitive(name) {
        return;
    }
    // The header is the table's first row: a row above with as many cells means this
    // line is data that happens to hold a sensitive word.
    if line_start > 0 {
        let Some((above_start, above_end)) = line_at(text, line_start - 1) else {
            return;
        };
        let above = strip_cr(&text[above_start..above_end]);
        let json = above.first() == Some(&b'{') || above.first() == Some(&b'[');
        if is_rule_line(above) {
            // Under a rule line (Markdown's `|---|`, psql's `---+---`, a boxed table's
            // `+---+`), a row of as many cells above that rule is the header: this line
            // is data (`| DB_PASSWORD | Database password |` in a docs table).
            if above_start > 0
                && let Some((top_start, top_end)) = line_at(text, above_start - 1)
            {
                let top = strip_cr(&text[top_start..top_end]);
                if !is_rule_line(top) && split(top, delim).is_some_and(|c| c.count == header.count)
                {
                    return;
                }
            }
        } else if !json && split(above, delim).is_some_and(|c| c.count == header.count) {
            return;
        }
    }
    let mut row_start = line_end + 1;
    let mut rows = 0;
    while row_start < text.len() && rows < MAX_ROWS {
        let Some((_, row_end)) = line_at(text, row_start) else {
            return;
        };
        let row = strip_cr(&text[row_start..row_end]);
        if row.len() > MAX_LINE {
            return;
        }
        if !is_rule_line(row) {
            match split(row, delim) {
                Some(cells) if cells.count == header.count => {
                    let (s, e) = trim(row, cells.ranges[column]);
                    let value = std::str::from_utf8(&row[s..e]).unwrap_or("");
                    if !is_not_a_secret(value) && !super::is_placeholder(value.as_bytes()) {
                        mask(row_start + s, row_start + e);
                    }
                }
                _ => return,
            }
        }
        rows += 1;
        row_start = row_end + 1;
    }
}

/// SQL dumps: `INSERT INTO t (a, password) VALUES (…, '…'), (…)` and PostgreSQL's
/// `COPY t (a, password) FROM stdin;` followed by tab-separated rows up to `\.`.
/// Returns whether the line was such a statement.
fn sql(
    keys: &SensitiveKeys,
    text: &[u8],
    line_start: usize,
    line_end: usize,
    at: usize,
    mask: &mut impl FnMut(usize, usize),
) -> bool {
    let line = &text[line_start..line_end];
    let upper = |word: &[u8]| {
        line.windows(word.len())
            .position(|w| w.eq_ignore_ascii_case(word))
    };
    let copy = upper(b"COPY ").is_some_and(|p| p < 4) && upper(b" FROM STDIN").is_some();
    let insert = upper(b"INSERT INTO ").is_some();
    if !copy && !insert {
        return false;
    }
    let hit = at - line_start;
    let Some(open) = line[..hit].iter().rposition(|&b| b == b'(') else {
        return true;
    };
    let Some(close) = line[hit..].iter().position(|&b| b == b')').map(|p| hit + p) else {
        return true;
    };
    let columns = &line[open + 1..close];
    let Some(cells) = split(columns, b',') else {
        return true;
    };
    let Some(column) = (0..cells.count).find(|&i| {
        let (s, e) = cells.ranges[i];
        open + 1 + s <= hit && hit < open + 1 + e
    }) else {
        return true;
    };
    let (s, e) = trim(columns, cells.ranges[column]);
    let name = std::str::from_utf8(&columns[s..e]).unwrap_or("");
    if !keys.is_sensitive(name.trim_matches(|c| matches!(c, '`' | '"' | '[' | ']'))) {
        return true;
    }
    if copy {
        let mut row_start = line_end + 1;
        for _ in 0..MAX_ROWS {
            let Some((_, row_end)) = line_at(text, row_start.min(text.len())) else {
                break;
            };
            let row = strip_cr(&text[row_start.min(row_end)..row_end]);
            if row_start >= text.len() || row == b"\\." {
                break;
            }
            match split(row, b'\t') {
                Some(fields) if fields.count == cells.count => {
                    let (s, e) = fields.ranges[column];
                    let value = std::str::from_utf8(&row[s..e]).unwrap_or("");
                    if value != "\\N" && !is_not_a_secret(value) {
                        mask(row_start + s, row_start + e);
                    }
                }
                _ => break,
            }
            row_start = row_end + 1;
        }
        return true;
    }
    // INSERT: tuples after VALUES, on this line or the following ones.
    let from = line_start + close;
    let end = text.len().min(from + 64 * MAX_LINE);
    let Some(values) = text[from..end]
        .windows(6)
        .position(|w| w.eq_ignore_ascii_case(b"VALUES"))
    else {
        return true;
    };
    let mut i = from + values + 6;
    let mut field = 0;
    let mut depth = 0;
    while i < end {
        match text[i] {
            b'(' if depth == 0 => {
                depth = 1;
                field = 0;
            }
            b')' if depth == 1 => depth = 0,
            b',' if depth == 1 => field += 1,
            b';' if depth == 0 => break,
            quote @ (b'\'' | b'"') if depth == 1 => {
                let start = i + 1;
                let mut j = start;
                while j < end && text[j] != quote {
                    j += if text[j] == b'\\' { 2 } else { 1 };
                    if j < end && text[j] == quote && text.get(j + 1) == Some(&quote) {
                        j += 2; // `''` inside a literal
                    }
                }
                let j = j.min(end);
                if field == column {
                    let value = std::str::from_utf8(&text[start..j]).unwrap_or("");
                    if !is_not_a_secret(value) {
                        mask(start, j);
                    }
                }
                i = j;
            }
            _ => {}
        }
        i += 1;
    }
    true
}
