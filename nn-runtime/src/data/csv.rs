//! Data sets from CSV files: `IN` feature columns and a target (a class label or `rows`
//! consecutive target values), every record checked, errors naming file, line and column.

use super::{DataError, Dataset, Labels};
use crate::network::Batch;
use crate::scalar::Float;
use nalgebra::{Const, Dyn};
use std::path::Path;

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
    pub has_header: bool,
    /// Field delimiter, e.g. `b','` or `b';'`.
    pub delimiter: u8,
    /// Where the target is.
    pub target_column: TargetColumn,
    /// What the target is.
    pub target: Target,
}

impl CsvOptions {
    /// Comma-separated, with a header, class labels below `classes` in the last column.
    pub fn classes(classes: usize) -> Self {
        Self {
            has_header: true,
            delimiter: b',',
            target_column: TargetColumn::Last,
            target: Target::Classes { classes },
        }
    }

    /// Comma-separated, with a header, `rows` target values in the last columns.
    pub fn values(rows: usize) -> Self {
        Self {
            target: Target::Values { rows },
            ..Self::classes(0)
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
    let csv_err = |e: ::csv::Error| {
        let line = e.position().map_or(0, |p| p.line());
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
    };
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(options.has_header)
        .delimiter(options.delimiter)
        .flexible(true)
        .trim(::csv::Trim::All)
        .from_path(path)
        .map_err(csv_err)?;
    let headers: Vec<String> = if options.has_header {
        reader
            .headers()
            .map_err(csv_err)?
            .iter()
            .map(str::to_owned)
            .collect()
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
    let mut record = ::csv::StringRecord::new();
    while reader.read_record(&mut record).map_err(csv_err)? {
        let line = record.position().map_or(0, |p| p.line());
        let at = |c: usize, message: String| DataError::Csv {
            path: path.to_path_buf(),
            line,
            column: Some((c + 1, headers.get(c).cloned())),
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
                    .ok_or_else(|| at(c, format!("`{field}` is not a class label")))?;
                if label >= n {
                    return Err(at(
                        c,
                        format!("class {label} is out of range for {n} classes"),
                    ));
                }
                classes.push(label);
                continue;
            }
            let v: f64 = field
                .parse()
                .map_err(|_| at(c, format!("`{field}` is not a number")))?;
            // Checked after the conversion: `1e39` is a finite f64 but overflows f32.
            let t = T::of(v);
            if !t.to_f64().is_finite() {
                let message = if v.is_finite() {
                    format!("`{field}` is out of range for {}", T::NAME)
                } else {
                    format!("`{field}` is not finite")
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
            target: Target::Values { rows: 2 },
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
}
