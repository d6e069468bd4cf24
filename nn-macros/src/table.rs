//! The one table of what the DSL offers: every layer kind with its syntax and options, and
//! every activation. Parsing dispatches on it, the checker validates options against it,
//! "did you mean" suggestions and the unknown-layer help are built from it, and the fuzz
//! tests draw their atoms from it. What a kind becomes in Rust is the expansion's table
//! (`expand::Gen::parts`); what it computes is its runtime type's business.

/// One layer kind of the DSL.
pub struct Kind {
    /// Its name in the DSL.
    pub name: &'static str,
    /// How it is written, for help texts (a norm with its defaults; the options may be left
    /// out, parentheses and all).
    pub syntax: &'static str,
    /// How it is written, short, for the list of kinds.
    pub short: &'static str,
    /// The `key = value` options it takes.
    pub options: &'static [&'static str],
}

/// Every layer kind (activations, which are layers too, are [`ACTIVATION_NAMES`]).
pub const KINDS: &[Kind] = &[
    Kind {
        name: "dense",
        short: "dense(IN -> OUT, ...)",
        syntax: "dense(IN -> OUT, activation, init = .., bias = .., l1 = .., l2 = ..)",
        options: &["init", "bias", "l1", "l2"],
    },
    Kind {
        name: "dropout",
        short: "dropout(p)",
        syntax: "dropout(p)",
        options: &[],
    },
    Kind {
        name: "batch_norm",
        short: "batch_norm",
        syntax: "batch_norm(momentum = 0.1, eps = 1e-5, affine = true)",
        options: &["momentum", "eps", "affine"],
    },
    Kind {
        name: "layer_norm",
        short: "layer_norm",
        syntax: "layer_norm(eps = 1e-5, affine = true)",
        options: &["eps", "affine"],
    },
];

/// Every activation name the DSL accepts, as a standalone layer or inside `dense`.
pub const ACTIVATION_NAMES: &[&str] = &[
    "identity",
    "linear",
    "sigmoid",
    "tanh",
    "relu",
    "leaky_relu",
    "elu",
    "gelu",
    "gelu_tanh",
    "softplus",
    "silu",
    "softmax",
];

/// The layer kind named `name`.
pub fn kind(name: &str) -> Option<&'static Kind> {
    KINDS.iter().find(|k| k.name == name)
}

/// The options of the layer kind `name` (none for an unknown one).
pub fn options(name: &str) -> &'static [&'static str] {
    kind(name).map_or(&[], |k| k.options)
}

/// Every name a layer may start with: the kinds, then the activations.
pub fn layer_names() -> Vec<&'static str> {
    let mut names: Vec<&str> = KINDS.iter().map(|k| k.name).collect();
    names.extend_from_slice(ACTIVATION_NAMES);
    names
}

/// `` `dense(IN -> OUT, ...)`, `dropout(p)`, ... `` for help texts.
pub fn kinds_help() -> String {
    let kinds: Vec<String> = KINDS.iter().map(|k| format!("`{}`", k.short)).collect();
    kinds.join(", ")
}

/// `a, b and c`.
pub fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// The options of kind `name` as `` `a`, `b` and `c` ``.
pub fn options_help(name: &str) -> String {
    let quoted: Vec<String> = options(name).iter().map(|o| format!("`{o}`")).collect();
    and_list(&quoted)
}
