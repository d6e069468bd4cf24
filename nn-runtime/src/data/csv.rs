//! Data sets from CSV files: `IN` feature columns and a target (a class label or `rows`
//! consecutive target values), every record checked, errors naming file, line and column.
//!
//! A record may take at most [`CsvOptions::max_record_bytes`] bytes: the reader stops as soon
//! as one is longer, so a hostile file costs a small multiple of that limit in memory and
//! time; error messages quote at most [`QUOTED_CHARS`] characters of a field.

use super::{DataError, Dataset, Labels};
use crate::network::Batch;
use crate::scalar::Float;
use nalgebra::{Const, Dyn};
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

/// The default [`CsvOptions::max_record_bytes`]: 4 MiB, about 400,000 numbers of ten
/// characters in one record.
pub const DEFAULT_MAX_RECORD_BYTES: usize = 4 << 20;

/// How many characters of a field an error message quotes; a longer field is shown as its
/// start, `…` and its length in bytes.
pub const QUOTED_CHARS: usize = 64;

/// Where the target is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TargetColumn {
    /// The first target column, by 0-based index.
    Index(usize),
    /// The first target column, by header name (needs `has_header`).
    Name(String),
    /// The last column(s) of each record.
    Last,
}

/// What the target is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// One column of class indices (non-negative integers) below `classes`.
    Classes {
        /// Number of classes.
        classes: usize,
    },
    /// `rows` consecutive columns of real target values.
    Values {
        /// Values per target.
        rows: usize,
    },
}

/// How to read a CSV file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CsvOptions {
    /// Whether the first line is a header (skipped, and used for [`TargetColumn::Name`]).
    ///
    /// A file without a header read with `has_header: true` would lose its first sample, so
    /// a header line whose every field is a number is refused, with an error naming the file
    /// and saying to set `has_header: false` ([`CsvOptions::no_header`]); a header whose names
    /// really are numbers is accepted with [`numeric_header`](Self::numeric_header).
    pub has_header: bool,
    /// Whether a header whose every field is a number (say `0,1,2,3`, as pandas writes for
    /// unnamed columns) is taken as a header; by default it is refused as a likely first
    /// sample (see [`has_header`](Self::has_header)).
    pub numeric_header: bool,
    /// Field delimiter, e.g. `b','` or `b';'`.
    pub delimiter: u8,
    /// Where the target is.
    pub target_column: TargetColumn,
    /// What the target is.
    pub target: Target,
    /// The most bytes one record may take, counted from the end of the previous record: its
    /// fields, delimiters, quotes and line terminator, and any blank lines before it
    /// (default [`DEFAULT_MAX_RECORD_BYTES`]). Reading stops with an error at the first record
    /// that is longer, having used at most about 16 times this much memory (the parser keeps
    /// 8 bytes per field besides the record's bytes).
    pub max_record_bytes: usize,
}

impl CsvOptions {
    /// Comma-separated, with a header, class labels below `classes` in the last column.
    pub fn classes(classes: usize) -> Self {
        Self {
            has_header: true,
            numeric_header: false,
            delimiter: b',',
            target_column: TargetColumn::Last,
            target: Target::Classes { classes },
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
        }
    }

    /// Comma-separated, with a header, `rows` target values in the last columns.
    pub fn values(rows: usize) -> Self {
        Self {
            target: Target::Values { rows },
            ..Self::classes(0)
        }
    }

    /// For a file without a header: sets [`has_header`](Self::has_header) to false, so the
    /// first line is a sample.
    ///
    /// ```
    /// use nn_runtime::data::csv::CsvOptions;
    /// let opts = CsvOptions::classes(2).no_header();
    /// assert!(!opts.has_header);
    /// ```
    pub fn no_header(self) -> Self {
        Self {
            has_header: false,
            ..self
        }
    }

    /// Accepts a header whose every field is a number (see
    /// [`numeric_header`](Self::numeric_header)).
    pub fn numeric_header(self) -> Self {
        Self {
            numeric_header: true,
            ..self
        }
    }

    /// Sets [`max_record_bytes`](Self::max_record_bytes), e.g. to read a file of records
    /// longer than [`DEFAULT_MAX_RECORD_BYTES`].
    pub fn max_record_bytes(self, bytes: usize) -> Self {
        Self {
            max_record_bytes: bytes,
            ..self
        }
    }
}

/// Loads a data set of `IN` features per record from a CSV file. Each record must have
/// exactly `IN` feature columns plus the target columns; every feature and target value must
/// parse as a finite number and every class label as an integer below the class count.
pub fn load<T: Float, const IN: usize>(
    path: impl AsRef<Path>,
    options: &CsvOptions,
) -> Result<Dataset<T, IN>, DataError> {
    let path = path.as_ref();
    let file = File::open(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    read(file, path, options)
}

/// [`load`] from any reader; `path` names it in errors.
fn read<T: Float, const IN: usize>(
    source: impl Read,
    path: &Path,
    options: &CsvOptions,
) -> Result<Dataset<T, IN>, DataError> {
    // The header, if any, is read as the first record, under the same limit.
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .delimiter(options.delimiter)
        .flexible(true)
        .trim(::csv::Trim::All)
        .from_reader(RecordWindow::new(source, options.max_record_bytes));
    let mut record = ::csv::StringRecord::new();
    let headers: Vec<String> = if options.has_header && next_record(&mut reader, &mut record, path)?
    {
        if !options.numeric_header && looks_like_data(&record) {
            return Err(DataError::Csv {
                path: path.to_path_buf(),
                line: record.position().map_or(1, |p| p.line()),
                column: None,
                message: numeric_header_message(&record, options),
            });
        }
        record.iter().map(str::to_owned).collect()
    } else {
        Vec::new()
    };
    let width = match options.target {
        Target::Classes { .. } => 1,
        Target::Values { rows } => rows,
    };
    let bad = |message: String| DataError::Csv {
        path: path.to_path_buf(),
        line: 1,
        column: None,
        message,
    };
    let columns = IN
        .checked_add(width)
        .ok_or_else(|| bad(format!("{IN} features + {width} target values overflow")))?;
    // `i + width <= columns` without overflow.
    let fits = |i: usize| i <= columns - width;
    let start = match &options.target_column {
        TargetColumn::Last => IN,
        TargetColumn::Index(i) if fits(*i) => *i,
        TargetColumn::Index(i) => {
            return Err(bad(format!(
                "target column {i} (+{width}) is outside the {columns} columns"
            )))
        }
        TargetColumn::Name(name) => match headers.iter().position(|h| h == name) {
            Some(i) if fits(i) => i,
            Some(i) => {
                return Err(bad(format!(
                    "target column `{name}` ({i}) is outside the {columns} columns"
                )))
            }
            None => return Err(bad(format!("no column named `{name}` in the header"))),
        },
    };
    let is_target = |c: usize| (start..start + width).contains(&c);

    let mut inputs: Vec<T> = Vec::new();
    let mut classes: Vec<usize> = Vec::new();
    let mut values: Vec<T> = Vec::new();
    while next_record(&mut reader, &mut record, path)? {
        let line = record.position().map_or(0, |p| p.line());
        let at = |c: usize, message: String| DataError::Csv {
            path: path.to_path_buf(),
            line,
            column: Some((c + 1, headers.get(c).map(|h| excerpt(h)))),
            message,
        };
        if record.len() != columns {
            let message = format!(
                "{} columns, expected {columns} ({IN} features + {width} target)",
                record.len()
            );
            return Err(DataError::Csv {
                path: path.to_path_buf(),
                line,
                column: None,
                message,
            });
        }
        for (c, field) in record.iter().enumerate() {
            if let (Target::Classes { classes: n }, true) = (options.target, is_target(c)) {
                let label = parse_class(field)
                    .ok_or_else(|| at(c, format!("{} is not a class label", quote(field))))?;
                if label >= n {
                    return Err(at(
                        c,
                        format!("class {label} is out of range for {n} classes"),
                    ));
                }
                classes.push(label);
                continue;
            }
            let v: f64 = field.parse().map_err(|_| {
                // Line 1 of a file read without a header may be the header.
                let hint = if line == 1 && !options.has_header {
                    "; if the first line is a header, set `has_header: true`"
                } else {
                    ""
                };
                at(c, format!("{} is not a number{hint}", quote(field)))
            })?;
            // Checked after the conversion: `1e39` is a finite f64 but overflows f32.
            let t = T::of(v);
            if !t.to_f64().is_finite() {
                let message = if v.is_finite() {
                    format!("{} is out of range for {}", quote(field), T::NAME)
                } else {
                    format!("{} is not finite", quote(field))
                };
                return Err(at(c, message));
            }
            if is_target(c) {
                &mut values
            } else {
                &mut inputs
            }
            .push(t);
        }
    }
    let n = inputs.len() / IN.max(1);
    let batch = Batch::<T, IN>::from_vec_generic(Const::<IN>, Dyn(n), inputs);
    let labels = match options.target {
        Target::Classes { classes: n } => Labels::Classes {
            labels: classes,
            classes: n,
        },
        Target::Values { rows } => Labels::Values { values, rows },
    };
    Dataset::new(batch, labels)
}

/// Reads the next record into `record`; `false` at the end of the file. A record longer than
/// the window's limit is an error naming the line it starts on.
fn next_record<R: Read>(
    reader: &mut ::csv::Reader<RecordWindow<R>>,
    record: &mut ::csv::StringRecord,
    path: &Path,
) -> Result<bool, DataError> {
    let at = reader.position().clone();
    reader.get_mut().start_record(at.byte());
    reader.read_record(record).map_err(|e| {
        let window = reader.get_ref();
        if window.exceeded {
            return DataError::Csv {
                path: path.to_path_buf(),
                line: at.line(),
                column: None,
                message: format!(
                    "the record is longer than the limit of {} bytes; raise it with \
                     `CsvOptions::max_record_bytes` to read such records",
                    window.limit
                ),
            };
        }
        let line = e.position().map_or(at.line(), |p| p.line());
        match e.into_kind() {
            ::csv::ErrorKind::Io(source) => DataError::Io {
                path: path.to_path_buf(),
                source,
            },
            kind => DataError::Csv {
                path: path.to_path_buf(),
                line,
                column: None,
                message: format!("{kind:?}"),
            },
        }
    })
}

/// The source under the CSV parser, handing it at most `limit` bytes past the start of the
/// current record (the end of the previous one), so an over-long record stops the parser
/// after `limit` bytes instead of being buffered whole.
struct RecordWindow<R> {
    inner: R,
    /// Bytes handed out so far.
    read: u64,
    /// Where the current record starts.
    start: u64,
    limit: u64,
    /// Whether a read was refused because the current record is longer than `limit`.
    exceeded: bool,
}

impl<R> RecordWindow<R> {
    fn new(inner: R, limit: usize) -> Self {
        Self {
            inner,
            read: 0,
            start: 0,
            limit: u64::try_from(limit).unwrap_or(u64::MAX),
            exceeded: false,
        }
    }

    /// Opens the window for a record starting at byte `start` (the parser's position).
    fn start_record(&mut self, start: u64) {
        self.start = start;
    }
}

impl<R: Read> Read for RecordWindow<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // The parser asks for more only once it has consumed all it was given, so all of
        // `start..read` belongs to the current record.
        let room = self
            .start
            .saturating_add(self.limit)
            .saturating_sub(self.read);
        if room == 0 && !buf.is_empty() {
            // A record of exactly `limit` bytes may end the file.
            if self.inner.read(&mut [0u8])? == 0 {
                return Ok(0);
            }
            self.exceeded = true;
            return Err(io::Error::other("CSV record longer than the limit"));
        }
        let len = usize::try_from(room).map_or(buf.len(), |room| room.min(buf.len()));
        let n = self.inner.read(&mut buf[..len])?;
        self.read += n as u64;
        Ok(n)
    }
}

/// A field as an error message quotes it: in backticks, cut to [`QUOTED_CHARS`] characters
/// with `…` and its length when longer.
fn quote(field: &str) -> String {
    match field.char_indices().nth(QUOTED_CHARS) {
        None => format!("`{field}`"),
        Some((end, _)) => format!("`{}…` ({} bytes)", &field[..end], field.len()),
    }
}

/// A header name as an error message shows it: cut to [`QUOTED_CHARS`] characters and `…`.
fn excerpt(name: &str) -> String {
    match name.char_indices().nth(QUOTED_CHARS) {
        None => name.to_owned(),
        Some((end, _)) => format!("{}…", &name[..end]),
    }
}

/// Whether every field of a record parses as a number: a first sample rather than a header.
fn looks_like_data(record: &::csv::StringRecord) -> bool {
    !record.is_empty() && record.iter().all(|f| f.parse::<f64>().is_ok())
}

/// What to do when the header line looks like data: the line's first fields, and both ways out.
fn numeric_header_message(record: &::csv::StringRecord, options: &CsvOptions) -> String {
    let mut shown: Vec<String> = record.iter().take(3).map(quote).collect();
    if record.len() > 3 {
        shown.push("…".into());
    }
    let constructor = match options.target {
        Target::Classes { classes } => format!("CsvOptions::classes({classes})"),
        Target::Values { rows } => format!("CsvOptions::values({rows})"),
    };
    format!(
        "every field of the header line is a number ({}): it looks like the first sample, \
         which a header would lose; if the file has no header, set `has_header: false` \
         (`{constructor}.no_header()`); if these numbers are the column names, accept them \
         with `{constructor}.numeric_header()`",
        shown.join(", ")
    )
}

/// A class label: a non-negative integer, also written as an integral float (`3.0`).
fn parse_class(field: &str) -> Option<usize> {
    field.parse::<usize>().ok().or_else(|| {
        let v: f64 = field.parse().ok()?;
        (v >= 0.0 && v.fract() == 0.0 && v < 1e15).then_some(v as usize)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        f
    }

    #[test]
    fn data_csv_classes_and_values() {
        let f = file("a,label,b\n1.5,2,3\n-1, 0 ,4e1\n");
        let opts = CsvOptions {
            target_column: TargetColumn::Name("label".into()),
            ..CsvOptions::classes(3)
        };
        let d = load::<f64, 2>(f.path(), &opts).unwrap();
        assert_eq!(d.inputs().as_slice(), &[1.5, 3.0, -1.0, 40.0]);
        assert_eq!(
            d.labels(),
            &Labels::Classes {
                labels: vec![2, 0],
                classes: 3
            }
        );

        let f = file("1;2;3\n4;5;6\n");
        let opts = CsvOptions {
            has_header: false,
            delimiter: b';',
            target_column: TargetColumn::Index(0),
            ..CsvOptions::values(2)
        };
        let d = load::<f32, 1>(f.path(), &opts).unwrap();
        assert_eq!(d.inputs().as_slice(), &[3.0, 6.0]);
        assert_eq!(
            d.labels(),
            &Labels::Values {
                values: vec![1.0, 2.0, 4.0, 5.0],
                rows: 2
            }
        );
    }

    #[test]
    fn data_csv_errors_name_line_and_column() {
        let f = file("x,y,label\n1,2,0\n1,oops,1\n");
        let e = load::<f32, 2>(f.path(), &CsvOptions::classes(2))
            .unwrap_err()
            .to_string();
        let name = f.path().display().to_string();
        assert_eq!(
            e,
            format!("{name}:3, column 2 (`y`): `oops` is not a number")
        );
        let f = file("x,y,label\n1,2,0\n1,2\n");
        let e = load::<f32, 2>(f.path(), &CsvOptions::classes(2))
            .unwrap_err()
            .to_string();
        assert!(
            e.ends_with(":3: 2 columns, expected 3 (2 features + 1 target)"),
            "{e}"
        );
        let f = file("x,y,label\n1,2,5\n");
        let e = load::<f32, 2>(f.path(), &CsvOptions::classes(2))
            .unwrap_err()
            .to_string();
        assert!(
            e.ends_with(":2, column 3 (`label`): class 5 is out of range for 2 classes"),
            "{e}"
        );
        let f = file("x,y,label\n1,NaN,1\n");
        let e = load::<f32, 2>(f.path(), &CsvOptions::classes(2))
            .unwrap_err()
            .to_string();
        assert!(e.contains("`NaN` is not finite"), "{e}");
        let f = file("x,y,label\n1,2,1.5\n");
        assert!(load::<f32, 2>(f.path(), &CsvOptions::classes(2)).is_err());
        let opts = CsvOptions {
            target_column: TargetColumn::Name("nope".into()),
            ..CsvOptions::classes(2)
        };
        let e = load::<f32, 2>(f.path(), &opts).unwrap_err().to_string();
        assert!(e.contains("no column named `nope`"), "{e}");
        let e = load::<f32, 2>("/nonexistent/x.csv", &CsvOptions::classes(2))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("/nonexistent/x.csv: "), "{e}");
    }

    #[test]
    fn data_csv_a_numeric_header_line_is_refused_as_a_likely_sample() {
        // No header, read with the default `has_header: true`: before, `1,2,0` vanished.
        let f = file("1,2,0\n3,4.5,1\n");
        let name = f.path().display().to_string();
        let e = load::<f32, 2>(f.path(), &CsvOptions::classes(2))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            format!(
                "{name}:1: every field of the header line is a number (`1`, `2`, `0`): it \
                 looks like the first sample, which a header would lose; if the file has no \
                 header, set `has_header: false` (`CsvOptions::classes(2).no_header()`); if \
                 these numbers are the column names, accept them with \
                 `CsvOptions::classes(2).numeric_header()`"
            )
        );
        // The advice works: both lines are samples.
        let d = load::<f32, 2>(f.path(), &CsvOptions::classes(2).no_header()).unwrap();
        assert_eq!(d.inputs().as_slice(), &[1.0, 2.0, 3.0, 4.5]);
        assert_eq!(d.labels_as_classes().unwrap(), &[0, 1]);
        // Names that are numbers (pandas' `0,1,2` for unnamed columns), accepted on request.
        let d = load::<f32, 2>(f.path(), &CsvOptions::classes(2).numeric_header()).unwrap();
        assert_eq!(d.inputs().as_slice(), &[3.0, 4.5]);
        // More than three fields are cut; values targets name their own constructor.
        let f = file("1,2,3,4\n");
        let e = load::<f32, 3>(f.path(), &CsvOptions::values(1))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("(`1`, `2`, `3`, …)") && e.contains("`CsvOptions::values(1).no_header()`"),
            "{e}"
        );
        // One name among numbers is a header, as is an empty first field (an index column).
        for text in ["1,2,label\n1,2,0\n", ",x,t\n1,2,0\n"] {
            assert_eq!(
                load::<f32, 2>(file(text).path(), &CsvOptions::classes(2))
                    .unwrap()
                    .len(),
                1,
                "{text}"
            );
        }
    }

    #[test]
    fn data_csv_a_header_read_as_data_says_to_set_has_header() {
        let f = file("x,y,label\n1,2,0\n");
        let e = load::<f32, 2>(f.path(), &CsvOptions::classes(2).no_header())
            .unwrap_err()
            .to_string();
        assert!(
            e.ends_with(
                ":1, column 1: `x` is not a number; if the first line is a header, set \
                 `has_header: true`"
            ),
            "{e}"
        );
        // Past line 1 a bad field is only a bad field.
        let f = file("1,2,0\nx,2,0\n");
        let e = load::<f32, 2>(f.path(), &CsvOptions::classes(2).no_header())
            .unwrap_err()
            .to_string();
        assert!(e.ends_with(":2, column 1: `x` is not a number"), "{e}");
    }

    #[test]
    fn data_csv_values_out_of_range_for_the_scalar_type() {
        // 1e39 is a finite f64 but overflows f32: refused after conversion, naming the place.
        let f = file("x,y,label\n1,2,0\n1,1e39,1\n");
        let name = f.path().display().to_string();
        let e = load::<f32, 2>(f.path(), &CsvOptions::classes(2))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            format!("{name}:3, column 2 (`y`): `1e39` is out of range for f32")
        );
        let d = load::<f64, 2>(f.path(), &CsvOptions::classes(2)).unwrap();
        assert_eq!(d.inputs().as_slice(), &[1.0, 2.0, 1.0, 1e39]);
        let f = file("x,t\n1,-1e39\n");
        let e = load::<f32, 1>(f.path(), &CsvOptions::values(1))
            .unwrap_err()
            .to_string();
        assert!(
            e.ends_with(":2, column 2 (`t`): `-1e39` is out of range for f32"),
            "{e}"
        );
    }

    #[test]
    fn data_csv_huge_option_values_are_errors() {
        let f = file("x,t\n1,2\n");
        let e = load::<f32, 1>(f.path(), &CsvOptions::values(usize::MAX))
            .unwrap_err()
            .to_string();
        assert!(e.contains("overflow"), "{e}");
        let opts = CsvOptions {
            target_column: TargetColumn::Index(usize::MAX),
            ..CsvOptions::values(1)
        };
        let e = load::<f32, 1>(f.path(), &opts).unwrap_err().to_string();
        assert!(e.contains("outside the 2 columns"), "{e}");
    }

    fn limited<const IN: usize>(text: &str, limit: usize) -> Result<Dataset<f32, IN>, String> {
        let opts = CsvOptions::values(1).max_record_bytes(limit);
        read::<f32, IN>(text.as_bytes(), Path::new("t.csv"), &opts).map_err(|e| e.to_string())
    }

    #[test]
    fn data_csv_record_limit_is_exact() {
        // Records of 4, 4 and 5 bytes with their `\n`: a limit of 5 reads them, 4 stops at
        // line 3; without the last `\n` that record is 4 bytes.
        let text = "x,t\n1,0\n22,1\n";
        assert_eq!(
            limited::<1>(text, 5).unwrap().inputs().as_slice(),
            &[1.0, 22.0]
        );
        assert_eq!(
            limited::<1>(text, 4).unwrap_err(),
            "t.csv:3: the record is longer than the limit of 4 bytes; raise it with \
             `CsvOptions::max_record_bytes` to read such records"
        );
        assert_eq!(limited::<1>(&text[..text.len() - 1], 4).unwrap().len(), 2);
        // The header is a record too.
        let e = limited::<1>(text, 3).unwrap_err();
        assert!(
            e.starts_with("t.csv:1: the record is longer than the limit of 3"),
            "{e}"
        );
        // `\r\n`: the `\n` counts toward the next record, as do blank lines.
        let text = "x,t\r\n1,0\r\n22,1\r\n";
        assert_eq!(limited::<1>(text, 6).unwrap().len(), 2);
        assert!(limited::<1>(text, 5).is_err());
        assert_eq!(limited::<1>("x,t\n1,0\n\n\n2,1\n", 6).unwrap().len(), 2);
        assert!(limited::<1>("x,t\n1,0\n\n\n2,1\n", 5).is_err());
        // Quoted newlines do not end a record.
        let text = "\"x\ny\",t\n1,2\n";
        assert!(limited::<1>(text, 8).is_ok());
        assert!(limited::<1>(text, 7).is_err());
    }

    /// An endless source, counting the bytes taken from it.
    struct Endless<'a> {
        byte: u8,
        taken: &'a std::cell::Cell<u64>,
    }

    impl Read for Endless<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            buf.fill(self.byte);
            self.taken.set(self.taken.get() + buf.len() as u64);
            Ok(buf.len())
        }
    }

    #[test]
    fn data_csv_endless_record_stops_at_the_limit() {
        // Before the limit this never returned: the parser buffered the record whole.
        for byte in [b'1', b','] {
            let taken = std::cell::Cell::new(0);
            let source = Endless {
                byte,
                taken: &taken,
            };
            let opts = CsvOptions::values(1).max_record_bytes(1000);
            let e = read::<f32, 1>(source, Path::new("t.csv"), &opts).unwrap_err();
            assert!(e.to_string().contains("limit of 1000 bytes"), "{e}");
            // The limit, and the one byte that shows the record goes on.
            assert_eq!(taken.get(), 1001);
        }
    }

    #[test]
    fn data_csv_errors_quote_at_most_64_characters() {
        let field = "é".repeat(100);
        let f = file(&format!("x,t\n1,{field}\n"));
        let e = load::<f32, 1>(f.path(), &CsvOptions::values(1))
            .unwrap_err()
            .to_string();
        let name = f.path().display().to_string();
        assert_eq!(
            e,
            format!(
                "{name}:2, column 2 (`t`): `{}…` (200 bytes) is not a number",
                "é".repeat(64)
            )
        );
        // 64 characters are quoted whole; header names are cut the same way.
        let header = "h".repeat(65);
        let f = file(&format!("x,{header}\n1,{}\n", "é".repeat(64)));
        let e = load::<f32, 1>(f.path(), &CsvOptions::values(1))
            .unwrap_err()
            .to_string();
        assert!(
            e.ends_with(&format!(
                ":2, column 2 (`{}…`): `{}` is not a number",
                "h".repeat(64),
                "é".repeat(64)
            )),
            "{e}"
        );
    }
}
