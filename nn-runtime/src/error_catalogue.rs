//! Keeps `docs/errors.md` in step with the error enums: every variant has an entry headed
//! `` ### `Enum::Variant` ``, whose example message is what the code prints for the example
//! value built here, and the page has no entry for a variant that does not exist.
//!
//! Adding a variant fails twice until the page has its entry: [`heading`] stops compiling
//! (its matches are exhaustive), and [`every_variant_has_an_example`] fails until
//! [`examples`] holds one value of it (the variants are read from the enums' source, so none
//! is forgotten).

use crate::data::DataError;
use crate::loss::LossError;
use crate::optim::OptimError;
use crate::persist::{Mismatch, PersistError};
use crate::train::TrainError;
use std::collections::BTreeSet;
use std::io;
use std::path::PathBuf;

const PAGE: &str = include_str!("../../docs/errors.md");

/// The source of each enum, with its name.
const SOURCES: [(&str, &str); 5] = [
    ("TrainError", include_str!("train/mod.rs")),
    ("LossError", include_str!("loss.rs")),
    ("PersistError", include_str!("persist/error.rs")),
    ("DataError", include_str!("data/mod.rs")),
    ("OptimError", include_str!("optim/error.rs")),
];

/// One error of any of the five enums.
enum Any {
    Train(TrainError),
    Loss(LossError),
    Persist(PersistError),
    Data(DataError),
    Optim(OptimError),
}

impl Any {
    fn message(&self) -> String {
        match self {
            Any::Train(e) => e.to_string(),
            Any::Loss(e) => e.to_string(),
            Any::Persist(e) => e.to_string(),
            Any::Data(e) => e.to_string(),
            Any::Optim(e) => e.to_string(),
        }
    }
}

/// The page's heading for `e`'s variant, `Enum::Variant`. Exhaustive: a new variant does
/// not compile until it has a heading here (and then an entry on the page).
fn heading(e: &Any) -> &'static str {
    match e {
        Any::Train(e) => match e {
            TrainError::Config(_) => "TrainError::Config",
            TrainError::Data(_) => "TrainError::Data",
            TrainError::Loss { .. } => "TrainError::Loss",
            TrainError::Optimizer(_) => "TrainError::Optimizer",
            TrainError::Persist(_) => "TrainError::Persist",
            TrainError::NonFinite { .. } => "TrainError::NonFinite",
        },
        Any::Loss(e) => match e {
            LossError::ClassOutOfRange { .. } => "LossError::ClassOutOfRange",
            LossError::Targets { .. } => "LossError::Targets",
            LossError::NotFused(_) => "LossError::NotFused",
        },
        Any::Persist(e) => match e {
            PersistError::Io { .. } => "PersistError::Io",
            PersistError::Format { .. } => "PersistError::Format",
            PersistError::Mismatch { .. } => "PersistError::Mismatch",
            PersistError::Checkpoint { .. } => "PersistError::Checkpoint",
            PersistError::NonFinite { .. } => "PersistError::NonFinite",
            PersistError::Architecture { .. } => "PersistError::Architecture",
            PersistError::Preprocessing { .. } => "PersistError::Preprocessing",
        },
        Any::Data(e) => match e {
            DataError::NonFinite { .. } => "DataError::NonFinite",
            DataError::NonFiniteTarget { .. } => "DataError::NonFiniteTarget",
            DataError::LabelOutOfRange { .. } => "DataError::LabelOutOfRange",
            DataError::Length { .. } => "DataError::Length",
            DataError::Index { .. } => "DataError::Index",
            DataError::LabelKind { .. } => "DataError::LabelKind",
            DataError::Invalid(_) => "DataError::Invalid",
            DataError::Io { .. } => "DataError::Io",
            DataError::Format { .. } => "DataError::Format",
            DataError::Csv { .. } => "DataError::Csv",
        },
        Any::Optim(e) => match e {
            OptimError::Hyperparameter { .. } => "OptimError::Hyperparameter",
            OptimError::Combination { .. } => "OptimError::Combination",
            OptimError::State(_) => "OptimError::State",
        },
    }
}

/// An operating-system error as Linux words it (built by hand so the message is the same on
/// every platform).
fn os_error(kind: io::ErrorKind, message: &str) -> io::Error {
    io::Error::new(kind, message.to_owned())
}

fn shape(tensor: &str, expected: &[usize], found: &[usize]) -> Mismatch {
    Mismatch::Shape {
        tensor: tensor.into(),
        expected: expected.to_vec(),
        found: found.to_vec(),
    }
}

/// One value of every variant, as a user meets it (the page's example messages).
fn examples() -> Vec<Any> {
    let not_found = || {
        os_error(
            io::ErrorKind::NotFound,
            "No such file or directory (os error 2)",
        )
    };
    let mnist_missing = || DataError::Io {
        path: PathBuf::from("data/mnist/train-images-idx3-ubyte"),
        source: os_error(
            io::ErrorKind::NotFound,
            "neither this file nor data/mnist/train-images-idx3-ubyte.gz exists",
        ),
    };
    vec![
        Any::Train(TrainError::Config(
            "validation fraction must be in (0, 1), got 1.5".into(),
        )),
        Any::Train(TrainError::Data(mnist_missing())),
        Any::Train(TrainError::Loss {
            epoch: 1,
            batch: 0,
            source: LossError::Targets {
                loss: "huber",
                what: format!("delta must be positive and finite, got {}", 0.0),
            },
        }),
        Any::Train(TrainError::Optimizer(OptimError::Hyperparameter {
            optimizer: "Adam",
            name: "lr",
            value: -0.001,
            requirement: "finite and >= 0",
        })),
        Any::Train(TrainError::Persist(PersistError::Io {
            path: PathBuf::from("runs"),
            source: io::Error::other("the checkpoint path is a directory; give a file name"),
        })),
        Any::Train(TrainError::NonFinite {
            epoch: 3,
            batch: 17,
            what: "loss",
        }),
        Any::Loss(LossError::ClassOutOfRange {
            sample: 3,
            class: 10,
            classes: 10,
        }),
        Any::Loss(LossError::Targets {
            loss: "mse",
            what: "20 target values for 30 outputs".into(),
        }),
        Any::Loss(LossError::NotFused("mse")),
        Any::Persist(PersistError::Io {
            path: PathBuf::from("mnist.safetensors"),
            source: not_found(),
        }),
        Any::Persist(PersistError::Format {
            path: PathBuf::from("model.safetensors"),
            message: "3 bytes, too short for the 8-byte header length".into(),
        }),
        Any::Persist(PersistError::Mismatch {
            path: PathBuf::from("mnist.safetensors"),
            problems: vec![
                shape("dense0.weight", &[128, 784], &[64, 784]),
                shape("dense0.bias", &[128], &[64]),
                shape("dense1.weight", &[10, 128], &[10, 64]),
            ],
        }),
        Any::Persist(PersistError::Checkpoint {
            path: PathBuf::from("mnist.safetensors"),
            message: "no `nn.epoch` entry in the metadata".into(),
        }),
        Any::Persist(PersistError::NonFinite {
            path: PathBuf::from("mnist.safetensors"),
            tensor: "dense0.weight".into(),
            index: 3,
            value: f64::NAN,
        }),
        Any::Persist(PersistError::Architecture {
            path: PathBuf::from("model.safetensors"),
            recorded: "dense(4 -> 8, relu), dense(8 -> 1)".into(),
            expected: "dense(4 -> 8, tanh), dense(8 -> 1)".into(),
        }),
        Any::Persist(PersistError::Preprocessing {
            path: PathBuf::from("house_prices.safetensors"),
            problem: Box::new(crate::persist::PreprocessingProblem::Width {
                scaler: "target".into(),
                tensor: "preprocess.target.mean".into(),
                dtype: "F64".into(),
                shape: vec![2],
                expected: 1,
            }),
        }),
        Any::Data(DataError::NonFinite {
            sample: 12,
            feature: 3,
            value: f64::NAN,
        }),
        Any::Data(DataError::NonFiniteTarget {
            sample: 5,
            row: 0,
            value: f64::INFINITY,
        }),
        Any::Data(DataError::LabelOutOfRange {
            sample: 7,
            label: 10,
            classes: 10,
        }),
        Any::Data(DataError::Length {
            what: "class labels",
            expected: 100,
            actual: 99,
        }),
        Any::Data(DataError::Index {
            index: 60000,
            len: 60000,
        }),
        Any::Data(DataError::LabelKind {
            needed: "class labels",
            found: "target vectors",
        }),
        Any::Data(DataError::Invalid(
            "cannot fit a standardizer on an empty data set".into(),
        )),
        Any::Data(DataError::Io {
            path: PathBuf::from("iris.csv"),
            source: not_found(),
        }),
        Any::Data(DataError::Format {
            path: PathBuf::from("data/mnist/train-labels-idx1-ubyte.gz"),
            message: "bad magic number 2051 (expected 2049)".into(),
        }),
        Any::Data(DataError::Csv {
            path: PathBuf::from("iris.csv"),
            line: 14,
            column: Some((3, Some("petal_length".into()))),
            message: "`n/a` is not a number".into(),
        }),
        Any::Optim(OptimError::Hyperparameter {
            optimizer: "Adam",
            name: "betas[1]",
            value: 1.0,
            requirement: "in [0, 1)",
        }),
        Any::Optim(OptimError::Combination {
            optimizer: "SGD",
            message: "Nesterov momentum requires a momentum and zero dampening",
        }),
        Any::Optim(OptimError::State(
            "the state is of optimizer `Adam`, not `SGD`".into(),
        )),
    ]
}

/// The variants of `pub enum name` in `source`: the identifiers that open a line indented by
/// exactly four spaces inside the enum's body (fields, attributes and docs are not).
fn variants(name: &str, source: &str) -> Vec<String> {
    let open = format!("pub enum {name} {{");
    let mut lines = source.lines().skip_while(|l| l.trim() != open);
    assert!(lines.next().is_some(), "`{open}` not found in its source");
    lines
        .take_while(|l| *l != "}")
        .filter_map(|l| l.strip_prefix("    "))
        .filter(|l| l.starts_with(|c: char| c.is_ascii_uppercase()))
        .map(|l| {
            let end = l
                .find(|c: char| !c.is_ascii_alphanumeric() && c != '_')
                .unwrap_or(l.len());
            format!("{name}::{}", &l[..end])
        })
        .collect()
}

/// The page's text under `` ### `heading` ``, up to the next heading; `None` without one.
fn section(heading: &str) -> Option<&'static str> {
    let marker = format!("\n### `{heading}`\n");
    let start = PAGE.find(&marker)? + marker.len();
    let rest = &PAGE[start..];
    let end = rest.find("\n#").unwrap_or(rest.len());
    Some(&rest[..end])
}

#[test]
fn every_variant_has_an_example() {
    let in_source: BTreeSet<String> = SOURCES
        .iter()
        .flat_map(|(name, source)| variants(name, source))
        .collect();
    let with_example: BTreeSet<String> = examples().iter().map(|e| heading(e).to_owned()).collect();
    assert_eq!(
        examples().len(),
        with_example.len(),
        "two examples of one variant"
    );
    let missing: Vec<_> = in_source.difference(&with_example).collect();
    assert!(
        missing.is_empty(),
        "variants without an example in error_catalogue.rs (and an entry in docs/errors.md): {missing:?}"
    );
    assert_eq!(in_source, with_example);
}

#[test]
fn every_variant_has_an_entry_with_its_message() {
    for e in examples() {
        let heading = heading(&e);
        let Some(text) = section(heading) else {
            panic!("docs/errors.md has no entry `### `{heading}``");
        };
        let message = e.message();
        assert!(
            text.contains(&format!("```text\n{message}\n```")),
            "docs/errors.md, entry {heading}: the example message should be\n{message}\n\
             in a ```text block"
        );
        for part in ["**Cause.**", "**What to do.**"] {
            assert!(
                text.contains(part),
                "docs/errors.md, entry {heading}: no {part}"
            );
        }
    }
}

#[test]
fn the_page_has_no_entry_for_a_variant_that_does_not_exist() {
    let known: BTreeSet<String> = SOURCES
        .iter()
        .flat_map(|(name, source)| variants(name, source))
        .collect();
    for line in PAGE.lines() {
        if let Some(h) = line.strip_prefix("### `") {
            let h = h.trim_end_matches('`');
            assert!(
                known.contains(h),
                "docs/errors.md has an entry for `{h}`, not a variant"
            );
        }
    }
}
