//! What the network counts: its widths, `PARAMS`, `FLOPS`, the layer table behind
//! `summary()`, and the `const` assertions the macro could not decide itself.

use super::{doc, Gen};
use crate::ir::{Dim, Layer, LayerKind};
use proc_macro2::{Delimiter, Group, Span, TokenStream};
use quote::{quote, quote_spanned};

/// `a + b + c` (or `0` for no terms).
fn join_sum(terms: impl Iterator<Item = TokenStream>) -> TokenStream {
    let terms: Vec<TokenStream> = terms.collect();
    if terms.is_empty() {
        quote!(0)
    } else {
        quote!(#(#terms)+*)
    }
}

/// The trainable parameters of a layer as `(IN, OUT, bias)`, counting `IN x OUT (+ OUT)`:
/// a dense layer's weights and bias, a norm's `γ` and `β` as `2 x N`; `None` for a layer
/// without.
fn triple(l: &Layer) -> Option<(Dim, Dim, bool)> {
    let (i, o) = (l.input.clone(), l.output.clone());
    match l.kind {
        LayerKind::Dense { bias, .. } => Some((i, o, bias)),
        LayerKind::BatchNorm { affine: true, .. } | LayerKind::LayerNorm { affine: true, .. } => {
            Some((Dim::Lit(2), o, false))
        }
        _ => None,
    }
}

/// The layers with trainable parameters.
fn param_layers<'a>(g: &'a Gen) -> impl Iterator<Item = &'a Layer> {
    g.net.layers.iter().filter(|l| triple(l).is_some())
}

fn dense_layers<'a>(g: &'a Gen) -> impl Iterator<Item = &'a Layer> {
    g.net
        .layers
        .iter()
        .filter(|l| matches!(l.kind, LayerKind::Dense { .. }))
}

/// `Σ IN x OUT (+ OUT with a bias)` over `layers`: plain arithmetic when all their widths
/// are literals (the macro checked that these fit), else saturating through the runtime,
/// so that an overflow is reported once, by the assertion of [`overflow_checks`].
fn count_expr(g: &Gen, layers: impl Iterator<Item = (Dim, Dim, bool)>) -> TokenStream {
    let rt = g.rt;
    let layers: Vec<_> = layers.collect();
    let literal = |d: &Dim| matches!(d, Dim::Lit(_));
    if layers.iter().all(|(i, o, _)| literal(i) && literal(o)) {
        join_sum(layers.iter().map(|(i, o, bias)| match bias {
            true => quote!(#i * #o + #o),
            false => quote!(#i * #o),
        }))
    } else {
        let list = layers.iter().map(|(i, o, bias)| quote!((#i, #o, #bias)));
        quote!(#rt::__private::saturating_parameter_count(&[#(#list),*]))
    }
}

/// For a network with a `const` width (the macro checked literal widths itself): one
/// `const` assertion per layer with parameters that the parameter count fits in usize. Only the
/// first layer where the running sum overflows fails, so the user sees one error, under
/// that layer. `FLOPS` (`Σ IN x OUT`) is at most `PARAMS`.
fn overflow_checks(g: &Gen) -> Vec<TokenStream> {
    if g.net.const_widths.is_empty() {
        return Vec::new();
    }
    let rt = g.rt;
    let list = param_layers(g)
        .filter_map(triple)
        .map(|(i, o, bias)| quote!((#i, #o, #bias)));
    let list = quote!(&[#(#list),*]);
    param_layers(g)
        .enumerate()
        .map(|(k, l)| {
            let k = proc_macro2::Literal::usize_unsuffixed(k);
            let msg = format!(
                "layer {} `{}`: the network's parameter count overflows usize",
                l.position + 1,
                l.text
            );
            // The assertion's first tokens at the layer's first, its parentheses at the
            // layer's last, so the compiler underlines the whole layer.
            let mut tokens = l.tokens.clone().into_iter();
            let first = tokens.next().map_or_else(Span::call_site, |t| t.span());
            let last = tokens.last().map_or(first, |t| t.span());
            let mut args = Group::new(
                Delimiter::Parenthesis,
                quote!(!::core::matches!(#rt::__private::parameter_count(#list), ::core::result::Result::Err(#k)), #msg),
            );
            args.set_span(last);
            quote_spanned!(first=> const _: () = ::core::assert! #args;)
        })
        .collect()
}

/// One `LayerInfo` per layer, for `LAYERS` and `summary()`.
fn layer_infos(g: &Gen) -> Vec<TokenStream> {
    let rt = g.rt;
    g.net
        .layers
        .iter()
        .map(|l| {
            let (lname, text) = (l.name.to_string(), &l.text);
            let (i, o) = (&l.input, &l.output);
            let kind = match l.kind {
                LayerKind::Dense { .. } => quote!(#rt::LayerKind::Dense),
                LayerKind::Dropout { .. } => quote!(#rt::LayerKind::Dropout),
                LayerKind::Activation(_) => quote!(#rt::LayerKind::Activation),
                LayerKind::BatchNorm { .. } => quote!(#rt::LayerKind::BatchNorm),
                LayerKind::LayerNorm { .. } => quote!(#rt::LayerKind::LayerNorm),
            };
            let params = count_expr(g, triple(l).into_iter());
            let flops = match l.kind {
                LayerKind::Dense { .. } => {
                    count_expr(g, std::iter::once((i.clone(), o.clone(), false)))
                }
                _ => quote!(0),
            };
            quote!(#rt::LayerInfo { name: #lname, text: #text, kind: #kind, inputs: #i, outputs: #o, params: #params, flops: #flops })
        })
        .collect()
}

/// The const assertions and the network's associated consts.
pub(super) fn items(g: &Gen) -> TokenStream {
    let (net, rt) = (g.net, g.rt);
    let name = &net.name;
    let (input, output) = (net.input(), net.output());
    let dsl = net.dsl();
    let params = count_expr(g, param_layers(g).filter_map(triple));
    let flops = count_expr(
        g,
        dense_layers(g).map(|l| (l.input.clone(), l.output.clone(), false)),
    );
    let layer_infos = layer_infos(g);
    let const_checks = net.const_checks.iter().map(|c| {
        let (cond, msg) = (&c.cond, &c.message);
        quote_spanned!(c.span=> const _: () = ::core::assert!(#cond, #msg);)
    });
    let overflow_checks = overflow_checks(g);
    let doc_input = doc(format!("Input width: {}.", input.text()));
    let doc_output = doc(format!("Output width: {}.", output.text()));
    quote! {
        #(#const_checks)*
        #(#overflow_checks)*

        #[allow(clippy::identity_op, clippy::erasing_op)]
        impl #name {
            #doc_input
            pub const INPUTS: usize = #input;
            #doc_output
            pub const OUTPUTS: usize = #output;
            /// Number of trainable parameters (weights and biases, norms' `γ` and `β`; not
            /// batch norm's running statistics).
            pub const PARAMS: usize = #params;
            /// Multiply-adds per sample in the forward pass (`Σ IN x OUT` over dense layers).
            pub const FLOPS: usize = #flops;
            /// The layer list as written in the DSL.
            pub const DSL: &'static str = #dsl;
            /// The layers, in order.
            pub const LAYERS: &'static [#rt::LayerInfo] = &[#(#layer_infos),*];
        }
    }
}
