//! Snapshot tests of the expansion: what `network!` generates for a few definitions, formatted
//! with prettyplease and compared with the committed files under `src/snapshots/`.
//!
//! After a deliberate change to the generated code, review the new expansion with
//! `INSTA_UPDATE=always cargo test -p nn-macros snapshots` and `git diff nn-macros/src/snapshots/`.

use proc_macro2::TokenStream;
use quote::quote;

/// The runtime path the generated code uses when the user depends on `nn`.
fn runtime() -> TokenStream {
    quote!(::nn::runtime)
}

/// Expands a named definition (items) to formatted Rust.
fn expand_items(input: TokenStream) -> String {
    let tokens = crate::expand::network(input, &runtime());
    format(&tokens.to_string(), tokens)
}

/// Expands an anonymous definition (an expression) to formatted Rust, inside a function.
fn expand_expr(input: TokenStream) -> String {
    let expr = crate::expand::network(input, &runtime());
    let tokens = quote! {
        fn f() {
            let _ = #expr;
        }
    };
    format(&tokens.to_string(), tokens)
}

fn format(text: &str, tokens: TokenStream) -> String {
    let file: syn::File = syn::parse2(tokens)
        .unwrap_or_else(|e| panic!("the expansion is not a valid Rust file: {e}\n{text}"));
    prettyplease::unparse(&file)
}

/// The MNIST classifier of the README.
fn mnist() -> TokenStream {
    quote! {
        /// Handwritten-digit classifier.
        #[derive(Clone, Debug)]
        pub Mnist < dense(784 -> 128, relu), dropout(0.5), dense(128 -> 10, softmax) >
    }
}

/// Standalone activation layers, const widths (one checked by a const assertion), options,
/// activations with parameters and the f64 scalar.
fn options_and_consts() -> TokenStream {
    quote! {
        pub(crate) Regressor: f64 <
            dense(INPUTS -> crate::consts::HIDDEN, init = he, l2 = 1e-4),
            leaky_relu(0.2),
            dropout(0.25),
            dense(HIDDEN2 -> 16, elu, bias = false, l1 = 0.001),
            dense(16 -> 3, softplus(2.0, 10.0), init = normal(0.01)),
            sigmoid,
        >
    }
}

/// The anonymous expression form, in f64.
fn anonymous_f64() -> TokenStream {
    quote! { : f64 < dense(2 -> 4, tanh), dense(4 -> 1, sigmoid) > }
}

/// The normalization layers: batch norm (whose running statistics a training-mode forward
/// moves), layer norm without affine parameters, and a batch norm with its options.
fn norms() -> TokenStream {
    quote! {
        pub Deep <
            dense(4 -> 6),
            batch_norm,
            relu,
            dense(6 -> 6, tanh),
            layer_norm(eps = 1e-3, affine = false),
            dense(6 -> 5),
            batch_norm(momentum = 0.3, eps = 1e-4, affine = false),
            dense(5 -> 3, softmax),
        >
    }
}

#[test]
fn norms_expansion() {
    insta::assert_snapshot!("norms", expand_items(norms()));
}

#[test]
fn mnist_expansion() {
    insta::assert_snapshot!("mnist", expand_items(mnist()));
}

#[test]
fn options_and_consts_expansion() {
    insta::assert_snapshot!("options_and_consts", expand_items(options_and_consts()));
}

#[test]
fn anonymous_f64_expansion() {
    insta::assert_snapshot!("anonymous_f64", expand_expr(anonymous_f64()));
}

/// How many times the identifier `name` occurs in `tokens`, groups included.
fn count_ident(tokens: TokenStream, name: &str) -> usize {
    tokens
        .into_iter()
        .map(|t| match t {
            proc_macro2::TokenTree::Ident(i) if i == name => 1,
            proc_macro2::TokenTree::Group(g) => count_ident(g.stream(), name),
            _ => 0,
        })
        .sum()
}

/// A width given by a `const` path is named once in the expansion (in the network's
/// `WIDTH_*` const), so a const of the wrong type or an unknown name is one compiler error.
#[test]
fn each_const_width_is_named_once() {
    for (input, named) in [
        // `H` feeds `H` (no check), `H2` is checked against `H`.
        (
            quote!(Net < dense(IN -> H, relu), dense(H -> H), dropout(0.5), dense(H2 -> OUT) >),
            [1, 1, 1, 1],
        ),
        (
            quote!(< dense(IN -> H, tanh), dense(H2 -> OUT) >),
            [1, 1, 1, 1],
        ),
        // After a DSL error the stand-in needs only the input and output widths.
        (
            quote!(Net < dense(IN -> H, rleu), dense(H -> OUT) >),
            [1, 0, 0, 1],
        ),
    ] {
        let tokens = crate::expand::network(input.clone(), &runtime());
        for (name, want) in ["IN", "H", "H2", "OUT"].into_iter().zip(named) {
            let got = count_ident(tokens.clone(), name);
            assert_eq!(
                got, want,
                "`{name}` in the expansion of `{input}`:\n{tokens}"
            );
        }
    }
}

#[test]
fn expansion_is_deterministic() {
    for (input, expr) in [
        (mnist(), false),
        (options_and_consts(), false),
        (anonymous_f64(), true),
    ] {
        let first = crate::expand::network(input.clone(), &runtime()).to_string();
        for _ in 0..10 {
            let again = crate::expand::network(input.clone(), &runtime()).to_string();
            assert_eq!(
                first, again,
                "the expansion of `{input}` changed between runs"
            );
        }
        let formatted = if expr {
            expand_expr(input.clone())
        } else {
            expand_items(input.clone())
        };
        for _ in 0..10 {
            let again = if expr {
                expand_expr(input.clone())
            } else {
                expand_items(input.clone())
            };
            assert_eq!(formatted, again);
        }
    }
}
