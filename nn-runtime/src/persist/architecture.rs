//! The architecture a file records (`nn.dsl`) against the network it is loaded into.
//!
//! Two DSL texts describe the same architecture when they are equal after
//! [`normalize`]: whitespace is dropped, each `dense` layer's widths (`IN -> OUT`) are
//! replaced by `_` (the tensors' shapes check the widths, and a width may be written as a
//! `const` in one program and a literal in another), and a `dense` layer's `key = value`
//! options are sorted. Activations, layer kinds, dropout rates and every option count.

use super::PersistError;
use std::path::Path;

/// The DSL text `dsl` in the normalized form two texts are compared in.
pub(crate) fn normalize(dsl: &str) -> String {
    let compact: String = dsl.chars().filter(|c| !c.is_whitespace()).collect();
    top_level(&compact).map(layer).collect::<Vec<_>>().join(",")
}

/// One layer's normalized text.
fn layer(text: &str) -> String {
    let Some(args) = text
        .strip_prefix("dense(")
        .and_then(|rest| rest.strip_suffix(')'))
    else {
        return text.to_owned();
    };
    let mut positional = Vec::new();
    let mut options = Vec::new();
    for (i, arg) in top_level(args).enumerate() {
        if i == 0 && arg.contains("->") {
            positional.push("_");
        } else if arg.contains('=') {
            options.push(arg);
        } else {
            positional.push(arg);
        }
    }
    options.sort_unstable();
    positional.extend(options);
    format!("dense({})", positional.join(","))
}

/// The non-empty parts of `s` between commas outside parentheses.
fn top_level(s: &str) -> impl Iterator<Item = &str> {
    let mut depth = 0i64;
    s.split(move |c| {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ => {}
        }
        c == ',' && depth == 0
    })
    .filter(|part| !part.is_empty())
}

/// Refuses a file that records an architecture (`nn.dsl`) other than `expected`. A file
/// recording none (as PyTorch's `save_file` writes) passes: only its tensors are checked.
pub(super) fn check(path: &Path, recorded: &str, expected: &str) -> Result<(), PersistError> {
    if recorded.trim().is_empty() || normalize(recorded) == normalize(expected) {
        return Ok(());
    }
    Err(PersistError::Architecture {
        path: path.to_path_buf(),
        recorded: recorded.to_owned(),
        expected: expected.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn persist_dsl_normalization() {
        let a = "dense(784 -> 128, relu, l2 = 1e-4, init = he), dropout(0.5), dense(128 -> 10, softmax)";
        let b = "dense(INPUTS->HIDDEN,relu,init=he,l2=1e-4),\n  dropout( 0.5 ), dense(HIDDEN -> 10, softmax),";
        assert_eq!(
            normalize(a),
            "dense(_,relu,init=he,l2=1e-4),dropout(0.5),dense(_,softmax)"
        );
        assert_eq!(normalize(a), normalize(b));
        for other in [
            "dense(784 -> 128, tanh, l2 = 1e-4, init = he), dropout(0.5), dense(128 -> 10, softmax)",
            "dense(784 -> 128, relu, l2 = 1e-3, init = he), dropout(0.5), dense(128 -> 10, softmax)",
            "dense(784 -> 128, relu, l2 = 1e-4, init = he), dropout(0.2), dense(128 -> 10, softmax)",
            "dense(784 -> 128, relu, l2 = 1e-4, init = he), dense(128 -> 10, softmax)",
            "dense(784 -> 128, l2 = 1e-4, init = he), relu, dropout(0.5), dense(128 -> 10, softmax)",
            "dense(784 -> 128, relu, l2 = 1e-4, init = he), dropout(0.5), dense(128 -> 10, softplus(2.0, 10.0))",
        ] {
            assert_ne!(normalize(a), normalize(other), "{other}");
        }
        // Arguments of an activation stay as they are, commas and all.
        assert_eq!(
            normalize("dense(2 -> 3, softplus(2.0, 10.0), bias = false)"),
            "dense(_,softplus(2.0,10.0),bias=false)"
        );
    }
}
