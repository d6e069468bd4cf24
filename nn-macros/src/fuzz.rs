//! Property tests: the macro never panics, whatever it is fed, and answers every input with
//! either code that parses as Rust or spanned `compile_error!`s.

use proc_macro2::TokenStream;
use proptest::prelude::*;
use std::str::FromStr;

/// Fragments a definition is made of beyond the table's names (see [`atoms`]), plus garbage.
const ATOMS: &[&str] = &[
    "rleu",
    "dense2",
    "he",
    "xavier",
    "normal",
    "true",
    "false",
    "pub",
    "Net",
    "f32",
    "f64",
    "f16",
    "IN",
    "crate::H",
    "<",
    ">",
    "->",
    "-",
    ">>",
    "=",
    ",",
    ":",
    "(",
    ")",
    "0",
    "1",
    "3",
    "784",
    "0.5",
    "1.0",
    "-0.1",
    "1e-3",
    "18446744073709551616",
    "340282366920938463463374607431768211456",
    "\"s\"",
    "'c'",
    "#[doc = \"x\"]",
    "[",
    "]",
    "{",
    "}",
    ";",
    "::",
    "1usize",
    "2u8",
    "0x10",
];

/// Every layer kind, activation and option of the DSL's table, then [`ATOMS`].
fn atoms() -> Vec<&'static str> {
    let mut out = crate::table::layer_names();
    for kind in crate::table::KINDS {
        out.extend(
            kind.options
                .iter()
                .filter(|o| !out.contains(o))
                .collect::<Vec<_>>(),
        );
    }
    out.extend_from_slice(ATOMS);
    out
}

/// Output of the expander for a token string, if it lexes.
fn expand(text: &str) -> Option<String> {
    let tokens = TokenStream::from_str(text).ok()?;
    Some(crate::expand::network(tokens, &quote::quote!(::nn::runtime)).to_string())
}

/// A valid definition as a list of layer texts.
fn valid_layers() -> impl Strategy<Value = Vec<String>> {
    let act = prop::sample::select(vec![
        "relu",
        "tanh",
        "sigmoid",
        "gelu",
        "silu",
        "identity",
        "elu(0.5)",
        "leaky_relu(0.2)",
    ]);
    let norm = prop::sample::select(vec![
        "",
        "batch_norm",
        "layer_norm(eps = 1e-3)",
        "batch_norm(momentum = 0.3, affine = false)",
    ]);
    prop::collection::vec((1usize..40, act, norm, prop::bool::ANY), 1..6).prop_map(|spec| {
        let mut layers = Vec::new();
        let mut width = 5;
        for (out, act, norm, dropout) in spec {
            layers.push(format!("dense({width} -> {out}, {act})"));
            if !norm.is_empty() {
                layers.push(norm.to_string());
            }
            if dropout {
                layers.push("dropout(0.25)".to_string());
            }
            width = out;
        }
        layers.push(format!("dense({width} -> 3, softmax)"));
        layers
    })
}

fn assert_well_formed(text: &str) {
    if let Some(out) = expand(text) {
        let is_error = out.contains("compile_error");
        let parses = syn::parse_file(&out).is_ok() || syn::parse_str::<syn::Expr>(&out).is_ok();
        assert!(
            is_error || parses,
            "neither errors nor valid code for `{text}`:\n{out}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn random_token_soup_never_panics(atoms in prop::collection::vec(prop::sample::select(atoms()), 0..40)) {
        assert_well_formed(&atoms.join(" "));
    }

    #[test]
    fn valid_definitions_expand_to_code(layers in valid_layers()) {
        let text = format!("pub Net < {} >", layers.join(", "));
        let out = expand(&text).expect("lexes");
        prop_assert!(!out.contains("compile_error"), "{text}: {out}");
        prop_assert!(syn::parse_file(&out).is_ok());
    }

    #[test]
    fn mutated_definitions_never_panic(
        layers in valid_layers(),
        cut in 0usize..200,
        insert in prop::sample::select(atoms()),
        at in 0usize..200,
        drop in 0usize..200,
    ) {
        let text = format!("Net < {} >", layers.join(", "));
        let tokens: Vec<&str> = text.split_inclusive(|c: char| !c.is_alphanumeric() && c != '_').collect();
        let n = tokens.len().max(1);
        let mut mutated: Vec<String> = tokens.iter().map(|t| t.to_string()).collect();
        mutated.insert(at % n, format!(" {insert} "));
        if mutated.len() > 1 {
            mutated.remove(drop % mutated.len());
        }
        mutated.truncate(mutated.len() - cut % mutated.len().max(1));
        assert_well_formed(&mutated.concat());
    }

}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn huge_and_long_definitions_never_panic(len in 1usize..300, width in prop::sample::select(vec!["1", "65536", "4294967296", "18446744073709551615", "99999999999999999999999"])) {
        let layers: Vec<String> = (0..len).map(|_| format!("dense({width} -> {width})")).collect();
        assert_well_formed(&format!("Deep < {} >", layers.join(", ")));
    }
}
