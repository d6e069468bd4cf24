//! Meaning and shapes: [`NetworkAst`] to the typed [`ir::Network`], every error collected.

use crate::ast::*;
use crate::diag::Diagnostics;
use crate::ir::{self, Act, ConstCheck, ConstWidths, Dim, Init, InitChoice, LayerKind, Scalar};
use crate::suggest::did_you_mean;
use crate::table::{self, ACTIVATION_NAMES};
use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use std::collections::HashMap;

/// Option names a dense layer accepts.
/// Initialization schemes.
const INITS: &[&str] = &["he", "xavier", "lecun", "zeros", "normal"];

/// Checks a parsed network. Returns `None` if any error was recorded.
pub fn network(ast: NetworkAst, diag: &mut Diagnostics) -> Option<ir::Network> {
    let scalar = match &ast.scalar {
        None => Scalar::F32,
        Some(s) if s == "f32" => Scalar::F32,
        Some(s) if s == "f64" => Scalar::F64,
        Some(s) => {
            diag.error(
                s.span(),
                format!(
                    "unknown scalar type `{s}`{}\nhelp: networks compute in `f32` (the default) or `f64`",
                    did_you_mean(&s.to_string(), &["f32", "f64"])
                ),
            );
            Scalar::F32
        }
    };
    if ast.layers.is_empty() {
        diag.error(
            ast.open,
            "empty network: expected at least one layer between `<` and `>`\nhelp: for example `< dense(784 -> 10, softmax) >`",
        );
        return None;
    }
    let name = ast
        .name
        .clone()
        .unwrap_or_else(|| format_ident!("AnonymousNetwork"));
    let mut widths = ConstWidths::new(name.clone());
    let count = ast.layers.len();
    let mut counters: HashMap<String, usize> = HashMap::new();
    let mut layers: Vec<Option<Checked>> = Vec::with_capacity(count);
    for (i, layer) in ast.layers.iter().enumerate() {
        layers.push(check_layer(
            i,
            count,
            layer,
            &mut counters,
            &mut widths,
            diag,
        ));
    }
    // The ReLU-family activation that follows an identity dense layer decides its init.
    let following_act: Vec<Option<Act>> = (0..count)
        .map(|i| {
            layers[i + 1..]
                .iter()
                .flatten()
                .map(|c| &c.layer.kind)
                .find(|k| !matches!(k, LayerKind::Dropout { .. }))
                .and_then(|k| match k {
                    LayerKind::Activation(a) => Some(*a),
                    _ => None,
                })
        })
        .collect();
    let mut const_checks = Vec::new();
    let mut prev: Option<(Dim, String, usize)> = None; // output width, layer description
    let mut ok = true;
    let mut out = Vec::with_capacity(count);
    for (i, entry) in layers.into_iter().enumerate() {
        let describe = format!("layer {} `{}`", i + 1, ast.layers[i].text);
        let Some(Checked {
            mut layer,
            input_tokens,
            explicit_init,
        }) = entry
        else {
            ok = false;
            // Keep checking widths past a layer with other mistakes where its widths are known.
            prev = match &ast.layers[i].kind {
                LayerKindAst::Dense(d) => match (&d.input, &d.output) {
                    (Some(input), Some(output)) => {
                        if let (Some((width, from, _)), Some(known_input)) =
                            (&prev, known(input, &mut widths))
                        {
                            compare(
                                width,
                                &known_input,
                                from,
                                &describe,
                                input.tokens(),
                                &mut const_checks,
                                diag,
                            );
                        }
                        known(output, &mut widths).map(|o| (o, describe, i))
                    }
                    _ => None,
                },
                LayerKindAst::Dropout { .. }
                | LayerKindAst::Named(_)
                | LayerKindAst::Norm { .. } => prev,
                LayerKindAst::Invalid => None,
            };
            continue;
        };
        match &mut layer.kind {
            LayerKind::Dense {
                activation, init, ..
            } => {
                if !explicit_init && *activation == Act::Identity {
                    if let Some(next) = following_act[i] {
                        *init = InitChoice::Of(next);
                    }
                }
                if let Some((width, from, _)) = &prev {
                    compare(
                        width,
                        &layer.input,
                        from,
                        &describe,
                        input_tokens,
                        &mut const_checks,
                        diag,
                    );
                }
            }
            _ => match &prev {
                Some((width, _, _)) => {
                    layer.input = width.clone();
                    layer.output = width.clone();
                }
                None if i == 0 => {
                    diag.push(syn::Error::new_spanned(
                        &ast.layers[i].tokens,
                        format!(
                            "{describe}: the first layer must be `dense`, since it fixes the network's input width\nhelp: start with e.g. `dense(784 -> 128, relu)`"
                        ),
                    ));
                    ok = false;
                    continue;
                }
                None => {
                    ok = false;
                    continue;
                }
            },
        }
        prev = Some((layer.output.clone(), describe, i));
        out.push(layer);
    }
    if !ok || diag.has_errors() {
        return None;
    }
    check_overflow(&out, diag)?;
    // Each layer's input is written as the previous layer's output from here on: equal
    // where the macro compared them, and where a `const` width made it a `const` assertion,
    // that assertion is then the only error when they differ (not also a type mismatch in
    // every pass of the generated chain).
    for k in 1..out.len() {
        out[k].input = out[k - 1].output.clone();
    }
    let anonymous = ast.name.is_none();
    Some(ir::Network {
        attrs: ast.attrs,
        vis: ast.vis,
        name,
        anonymous,
        scalar,
        layers: out,
        const_widths: widths.into_vec(),
        const_checks,
    })
}

/// What one layer checked to on its own.
struct Checked {
    layer: ir::Layer,
    /// Tokens of a dense layer's input width, for errors about it.
    input_tokens: TokenStream,
    /// Whether the DSL gave `init` (else it follows the activation).
    explicit_init: bool,
}

/// A width as far as the macro knows it, if valid.
fn known(d: &DimAst, widths: &mut ConstWidths) -> Option<Dim> {
    match d {
        DimAst::Lit(_, 0) => None,
        DimAst::Lit(_, v) => usize::try_from(*v).ok().map(Dim::Lit),
        DimAst::Path(p) => Some(widths.dim(p)),
    }
}

/// Compares the previous layer's output width with a dense layer's input width.
fn compare(
    prev: &Dim,
    input: &Dim,
    from: &str,
    describe: &str,
    input_tokens: TokenStream,
    checks: &mut Vec<ConstCheck>,
    diag: &mut Diagnostics,
) {
    match (prev, input) {
        (Dim::Lit(a), Dim::Lit(b)) if a != b => diag.push(syn::Error::new_spanned(
            input_tokens,
            format!(
                "{describe} takes {b} inputs, but {from} outputs {a}\nhelp: make this layer's input width {a}, or change the previous layer's output"
            ),
        )),
        (Dim::Lit(_), Dim::Lit(_)) => {}
        (Dim::Const(a), Dim::Const(b)) if a.item == b.item => {}
        (a, b) => checks.push(ConstCheck {
            cond: quote!(#a == #b),
            message: format!(
                "{describe} takes `{}` inputs, but {from} outputs `{}`: the two widths must be equal",
                b.text(),
                a.text()
            ),
            span: syn::spanned::Spanned::span(&input_tokens),
        }),
    }
}

/// Refuses widths whose parameter count or multiply-adds would overflow `usize`.
fn check_overflow(layers: &[ir::Layer], diag: &mut Diagnostics) -> Option<()> {
    let mut params: u128 = 0;
    for l in layers {
        if let (LayerKind::Dense { bias, .. }, Dim::Lit(i), Dim::Lit(o)) =
            (&l.kind, &l.input, &l.output)
        {
            let (i, o) = (*i as u128, *o as u128);
            params = params
                .saturating_add(i.saturating_mul(o))
                .saturating_add(if *bias { o } else { 0 });
            if params > usize::MAX as u128 {
                diag.push(syn::Error::new_spanned(
                    &l.tokens,
                    format!(
                        "layer {} `{}`: the network's parameter count overflows usize\nhelp: use smaller widths",
                        l.position + 1,
                        l.text
                    ),
                ));
                return None;
            }
        }
    }
    Some(())
}

/// Checks one layer on its own (widths against neighbours come later).
fn check_layer(
    i: usize,
    count: usize,
    layer: &LayerAst,
    counters: &mut HashMap<String, usize>,
    widths: &mut ConstWidths,
    diag: &mut Diagnostics,
) -> Option<Checked> {
    let describe = format!("layer {} `{}`", i + 1, layer.text);
    let is_last = i + 1 == count;
    let mut name = |kind: &str| {
        let n = counters.entry(kind.to_string()).or_insert(0);
        *n += 1;
        format_ident!("{}{}", kind, *n - 1)
    };
    let errors_before = diag.has_errors();
    let _ = errors_before;
    match &layer.kind {
        LayerKindAst::Invalid => None,
        LayerKindAst::Dense(d) => {
            let input = d
                .input
                .as_ref()
                .and_then(|w| width(w, &describe, "input", widths, diag));
            let output = d
                .output
                .as_ref()
                .and_then(|w| width(w, &describe, "output", widths, diag));
            let mut activation = Act::Identity;
            let mut act_ok = true;
            for (k, a) in d.activations.iter().enumerate() {
                if k > 0 {
                    diag.push(syn::Error::new_spanned(
                        &a.tokens,
                        format!(
                            "{describe}: a dense layer takes one activation, found a second one `{}`\nhelp: add it as a layer of its own after this one: `..., {}`",
                            a.text(),
                            a.text()
                        ),
                    ));
                    act_ok = false;
                    continue;
                }
                match activation_of(a, &describe, diag) {
                    Some(act) => activation = act,
                    None => act_ok = false,
                }
            }
            if activation == Act::Softmax && !is_last {
                softmax_error(&d.activations[0].tokens, &describe, diag);
                act_ok = false;
            }
            let opts = options("dense", &d.options, &describe, diag);
            let (input, output, opts) = (input?, output?, opts?);
            if !act_ok {
                return None;
            }
            let input_tokens = d.input.as_ref().map(DimAst::tokens).unwrap_or_default();
            Some(Checked {
                layer: ir::Layer {
                    position: i,
                    name: name("dense"),
                    text: layer.text.clone(),
                    tokens: layer.tokens.clone(),
                    input,
                    output,
                    kind: LayerKind::Dense {
                        activation,
                        init: opts
                            .init
                            .map_or(InitChoice::Of(activation), InitChoice::Given),
                        bias: opts.bias,
                        l1: opts.l1,
                        l2: opts.l2,
                    },
                },
                input_tokens,
                explicit_init: opts.init.is_some(),
            })
        }
        LayerKindAst::Dropout { keyword, p } => {
            let p = p.as_ref()?;
            if !(0.0..1.0).contains(&p.value) {
                diag.push(syn::Error::new_spanned(
                    &p.tokens,
                    format!(
                        "{describe}: drop probability {} is outside [0, 1)\nhelp: p is the fraction of units dropped in training, e.g. `dropout(0.5)`",
                        p.text
                    ),
                ));
                return None;
            }
            if is_last {
                diag.error(
                    keyword.span(),
                    format!(
                        "{describe}: dropout cannot be the output layer, it would zero some predictions in training\nhelp: put dropout between hidden layers"
                    ),
                );
                return None;
            }
            Some(Checked {
                layer: ir::Layer {
                    position: i,
                    name: name("dropout"),
                    text: layer.text.clone(),
                    tokens: layer.tokens.clone(),
                    input: Dim::Lit(0),
                    output: Dim::Lit(0),
                    kind: LayerKind::Dropout { p: p.value },
                },
                input_tokens: TokenStream::new(),
                explicit_init: false,
            })
        }
        LayerKindAst::Norm {
            keyword,
            options: opts,
        } => {
            let kind = keyword.to_string();
            let o = options(&kind, opts, &describe, diag)?;
            let kind_ir = match kind.as_str() {
                "batch_norm" => LayerKind::BatchNorm {
                    momentum: o.momentum,
                    eps: o.eps,
                    affine: o.affine,
                },
                _ => LayerKind::LayerNorm {
                    eps: o.eps,
                    affine: o.affine,
                },
            };
            Some(Checked {
                layer: ir::Layer {
                    position: i,
                    name: name(&kind),
                    text: layer.text.clone(),
                    tokens: layer.tokens.clone(),
                    input: Dim::Lit(0),
                    output: Dim::Lit(0),
                    kind: kind_ir,
                },
                input_tokens: TokenStream::new(),
                explicit_init: false,
            })
        }
        LayerKindAst::Named(call) => {
            // The parser has refused names that are no layer (`parse::unknown_layer`).
            let act = activation_of(call, &describe, diag)?;
            if act == Act::Softmax && !is_last {
                softmax_error(&call.tokens, &describe, diag);
                return None;
            }
            Some(Checked {
                layer: ir::Layer {
                    position: i,
                    name: name(act.name()),
                    text: layer.text.clone(),
                    tokens: layer.tokens.clone(),
                    input: Dim::Lit(0),
                    output: Dim::Lit(0),
                    kind: LayerKind::Activation(act),
                },
                input_tokens: TokenStream::new(),
                explicit_init: false,
            })
        }
    }
}

fn softmax_error(tokens: &TokenStream, describe: &str, diag: &mut Diagnostics) {
    diag.push(syn::Error::new_spanned(
        tokens,
        format!(
            "{describe}: softmax is only allowed in the output layer\nhelp: softmax turns a layer into one probability distribution, which is what the output predicts (and cross-entropy fuses with it there); in a hidden layer it couples all units and saturates: use relu, tanh or another activation"
        ),
    ));
}

/// A width: positive, and known if literal.
fn width(
    w: &DimAst,
    describe: &str,
    which: &str,
    widths: &mut ConstWidths,
    diag: &mut Diagnostics,
) -> Option<Dim> {
    match w {
        DimAst::Lit(lit, 0) => {
            diag.error(
                lit.span(),
                format!(
                    "{describe}: the {which} width is 0\nhelp: every layer needs at least one unit"
                ),
            );
            None
        }
        DimAst::Lit(lit, v) => match usize::try_from(*v) {
            Ok(v) => Some(Dim::Lit(v)),
            Err(_) => {
                diag.error(
                    lit.span(),
                    format!("{describe}: the {which} width {v} does not fit in usize"),
                );
                None
            }
        },
        DimAst::Path(p) => Some(widths.dim(p)),
    }
}

/// Resolves an activation name and its arguments.
fn activation_of(call: &CallAst, describe: &str, diag: &mut Diagnostics) -> Option<Act> {
    let name = call.name.to_string();
    let args: Vec<f64> = call.args.iter().flatten().map(|n| n.value).collect();
    let arity = |max: usize, diag: &mut Diagnostics| -> bool {
        if args.len() > max || (call.args.is_some() && max == 0) {
            let what = match max {
                0 => "takes no arguments".to_string(),
                1 => "takes at most one argument".to_string(),
                n => format!("takes at most {n} arguments"),
            };
            diag.push(syn::Error::new_spanned(
                &call.tokens,
                format!("{describe}: `{name}` {what}, found {}", args.len()),
            ));
            return false;
        }
        true
    };
    let act = match name.as_str() {
        "identity" | "linear" => arity(0, diag).then_some(Act::Identity),
        "sigmoid" => arity(0, diag).then_some(Act::Sigmoid),
        "tanh" => arity(0, diag).then_some(Act::Tanh),
        "relu" => arity(0, diag).then_some(Act::Relu),
        "gelu" => arity(0, diag).then_some(Act::Gelu),
        "gelu_tanh" => arity(0, diag).then_some(Act::GeluTanh),
        "silu" => arity(0, diag).then_some(Act::Silu),
        "softmax" => arity(0, diag).then_some(Act::Softmax),
        "leaky_relu" => {
            arity(1, diag).then(|| Act::LeakyRelu(args.first().copied().unwrap_or(0.01)))
        }
        "elu" => arity(1, diag).then(|| Act::Elu(args.first().copied().unwrap_or(1.0))),
        "softplus" => {
            let act = arity(2, diag).then(|| {
                Act::Softplus(
                    args.first().copied().unwrap_or(1.0),
                    args.get(1).copied().unwrap_or(20.0),
                )
            });
            if let Some(Act::Softplus(beta, _)) = act {
                if beta <= 0.0 {
                    diag.push(syn::Error::new_spanned(
                        &call.tokens,
                        format!("{describe}: softplus needs beta > 0, found {beta}"),
                    ));
                    return None;
                }
            }
            act
        }
        _ => {
            diag.error(
                call.name.span(),
                format!(
                    "{describe}: unknown activation `{name}`{}\nhelp: activations are {}",
                    did_you_mean(&name, ACTIVATION_NAMES),
                    ACTIVATION_NAMES.join(", ")
                ),
            );
            None
        }
    };
    if act.is_some_and(|a| match a {
        Act::LeakyRelu(v) | Act::Elu(v) | Act::Softplus(v, _) => !v.is_finite(),
        _ => false,
    }) {
        diag.push(syn::Error::new_spanned(
            &call.tokens,
            format!("{describe}: `{name}` needs a finite argument"),
        ));
        return None;
    }
    act
}

/// A layer's options, with the defaults of those not given (PyTorch's for the norms).
struct Options {
    init: Option<Init>,
    bias: bool,
    l1: f64,
    l2: f64,
    momentum: f64,
    eps: f64,
    affine: bool,
}

/// The options of a layer of kind `kind`, each checked against the kind's list in the table.
fn options(
    kind: &str,
    opts: &[OptionAst],
    describe: &str,
    diag: &mut Diagnostics,
) -> Option<Options> {
    let allowed = table::options(kind);
    let mut out = Options {
        init: None,
        bias: true,
        l1: 0.0,
        l2: 0.0,
        momentum: 0.1,
        eps: 1e-5,
        affine: true,
    };
    let mut seen: Vec<String> = Vec::new();
    let mut ok = true;
    for o in opts {
        let key = o.key.to_string();
        if seen.contains(&key) {
            diag.push(syn::Error::new_spanned(
                &o.tokens,
                format!("{describe}: option `{key}` is given twice\nhelp: remove one of them"),
            ));
            ok = false;
            continue;
        }
        seen.push(key.clone());
        let found = match &o.value {
            OptionValue::Number(n) => n.text.clone(),
            OptionValue::Call(c) => c.text(),
            OptionValue::Other(t) => t.to_string(),
        };
        let mut bad = |expected: &str, diag: &mut Diagnostics| {
            diag.push(syn::Error::new_spanned(
                &o.tokens,
                format!("{describe}: option `{key}` expects {expected}, found `{found}`"),
            ));
            ok = false;
        };
        if !allowed.contains(&key.as_str()) {
            diag.error(
                o.key.span(),
                format!(
                    "{describe}: unknown option `{key}`{}\nhelp: {kind} layers take the options {}",
                    did_you_mean(&key, allowed),
                    table::and_list(&allowed.iter().map(|o| o.to_string()).collect::<Vec<_>>())
                ),
            );
            ok = false;
            continue;
        }
        match key.as_str() {
            "init" => match &o.value {
                OptionValue::Call(c) => match (c.name.to_string().as_str(), c.args.as_deref()) {
                    ("he", None) => out.init = Some(Init::He),
                    ("xavier", None) => out.init = Some(Init::Xavier),
                    ("lecun", None) => out.init = Some(Init::Lecun),
                    ("zeros", None) => out.init = Some(Init::Zeros),
                    ("normal", Some([std])) if std.value > 0.0 && std.value.is_finite() => {
                        out.init = Some(Init::Normal(std.value))
                    }
                    ("normal", _) => {
                        bad("`normal(std)` with one positive standard deviation", diag)
                    }
                    (other, _) => {
                        let hint = did_you_mean(other, INITS);
                        bad(
                            &format!("one of he, xavier, lecun, zeros, normal(std){hint}"),
                            diag,
                        )
                    }
                },
                _ => bad("one of he, xavier, lecun, zeros, normal(std)", diag),
            },
            "bias" => match &o.value {
                OptionValue::Call(c) if c.args.is_none() && c.name == "true" => out.bias = true,
                OptionValue::Call(c) if c.args.is_none() && c.name == "false" => out.bias = false,
                _ => bad("`true` or `false`", diag),
            },
            "l1" | "l2" => match &o.value {
                OptionValue::Number(n) if n.value >= 0.0 && n.value.is_finite() => {
                    if key == "l1" {
                        out.l1 = n.value
                    } else {
                        out.l2 = n.value
                    }
                }
                _ => bad("a non-negative number (the penalty coefficient)", diag),
            },
            "momentum" => match &o.value {
                OptionValue::Number(n) if (0.0..=1.0).contains(&n.value) => out.momentum = n.value,
                _ => bad(
                    "a number in [0, 1] (the weight of a batch in the running statistics)",
                    diag,
                ),
            },
            "eps" => match &o.value {
                OptionValue::Number(n) if n.value > 0.0 && n.value.is_finite() => out.eps = n.value,
                _ => bad("a positive number (added to the variance)", diag),
            },
            "affine" => match &o.value {
                OptionValue::Call(c) if c.args.is_none() && c.name == "true" => out.affine = true,
                OptionValue::Call(c) if c.args.is_none() && c.name == "false" => out.affine = false,
                _ => bad("`true` or `false`", diag),
            },
            _ => bad("an option this layer kind takes", diag),
        }
    }
    ok.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn check(t: TokenStream) -> (Option<ir::Network>, Vec<String>) {
        let mut d = Diagnostics::default();
        let net = crate::parse::network(t, &mut d).and_then(|a| network(a, &mut d));
        (net, d.messages())
    }

    #[test]
    fn infers_widths_through_dropout_and_activation_layers() {
        let (net, errs) =
            check(quote!(N < dense(4 -> 8), relu, dropout(0.2), dense(8 -> 2, softmax) >));
        assert!(errs.is_empty(), "{errs:?}");
        let net = net.expect("net");
        let names: Vec<String> = net.layers.iter().map(|l| l.name.to_string()).collect();
        assert_eq!(names, ["dense0", "relu0", "dropout0", "dense1"]);
        assert!(matches!(net.layers[2].output, Dim::Lit(8)));
        // The identity dense layer feeding relu takes relu's initialization (He).
        assert!(matches!(
            net.layers[0].kind,
            LayerKind::Dense {
                init: InitChoice::Of(Act::Relu),
                ..
            }
        ));
        assert!(matches!(
            net.layers[3].kind,
            LayerKind::Dense {
                init: InitChoice::Of(Act::Softmax),
                ..
            }
        ));
    }

    #[test]
    fn reports_every_mistake_at_once() {
        let (net, errs) = check(quote!(
            N < dense(4 -> 0, rleu), dropout(1.5), dense(9 -> 3, softmax, bias = 3, l3 = 1), dense(3 -> 2, softmax) >
        ));
        assert!(net.is_none());
        let all = errs.join("\n");
        for want in [
            "the output width is 0",
            "did you mean `relu`?",
            "drop probability 1.5 is outside [0, 1)",
            "softmax is only allowed in the output layer",
            "option `bias` expects `true` or `false`, found `3`",
            "unknown option `l3`; did you mean `l1`?",
        ] {
            assert!(all.contains(want), "missing {want:?} in:\n{all}");
        }
    }

    #[test]
    fn adjacent_widths_must_agree() {
        let (_, errs) = check(quote!(N < dense(4 -> 8, relu), dropout(0.5), dense(6 -> 2) >));
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].contains(
            "layer 3 `dense(6 -> 2)` takes 6 inputs, but layer 2 `dropout(0.5)` outputs 8"
        ));
    }

    #[test]
    fn const_widths_become_const_checks() {
        let (net, errs) =
            check(quote!(N < dense(IN -> H, relu), dense(H -> OUT), dense(H2 -> 3) >));
        assert!(errs.is_empty(), "{errs:?}");
        let net = net.expect("net");
        assert_eq!(net.const_checks.len(), 1, "H feeds H: nothing to check");
        assert!(net.const_checks[0]
            .message
            .contains("takes `H2` inputs, but layer 2"));
    }

    #[test]
    fn each_const_path_is_one_const_width() {
        let (net, errs) = check(quote!(
            N < dense(IN -> H, relu), dense(H -> crate::H), dense(self::H -> r#in) >
        ));
        assert!(errs.is_empty(), "{errs:?}");
        let net = net.expect("net");
        let widths: Vec<(String, String)> = net
            .const_widths
            .iter()
            .map(|c| (path_text(&c.path), c.item.to_string()))
            .collect();
        let want = [
            ("IN", "WIDTH_IN"),
            ("H", "WIDTH_H"),
            ("crate::H", "WIDTH_H_2"),
            ("self::H", "WIDTH_H_3"),
            ("r#in", "WIDTH_IN_2"),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(p, i)| (p.to_string(), i.to_string()))
            .collect();
        assert_eq!(widths, want);
        // Both uses of `H` share one const.
        let (Dim::Const(out), Dim::Const(input)) = (&net.layers[0].output, &net.layers[1].input)
        else {
            panic!("const widths expected");
        };
        assert_eq!(out.item, input.item);
    }

    #[test]
    fn other_errors() {
        for (input, want) in [
            (quote! { N < > }, "empty network"),
            (
                quote!(N < relu, dense(2 -> 1) >),
                "the first layer must be `dense`",
            ),
            (
                quote!(N < dense(2 -> 2, relu, tanh) >),
                "found a second one `tanh`",
            ),
            (
                quote!(N < dense(2 -> 2, bias = false, bias = true) >),
                "option `bias` is given twice",
            ),
            (
                quote!(N < dense(2 -> 2), dropot(0.5), dense(2 -> 1) >),
                "did you mean `dropout`?",
            ),
            (
                quote!(N: f16 < dense(2 -> 2) >),
                "unknown scalar type `f16`",
            ),
            (
                quote!(N < dense(2 -> 2), dropout(0.1) >),
                "dropout cannot be the output layer",
            ),
            (
                quote!(N < dense(2 -> 2, relu(3)) >),
                "`relu` takes no arguments",
            ),
            (
                quote!(N < dense(2 -> 2, init = normal(-1.0)) >),
                "`normal(std)` with one positive",
            ),
            (
                quote!(N < dense(2 -> 2, init = kaiming) >),
                "one of he, xavier",
            ),
            (
                quote!(N < dense(2 -> 2, l2 = -0.1) >),
                "non-negative number",
            ),
            (
                quote!(N < dense(18446744073709551615 -> 18446744073709551615) >),
                "overflows usize",
            ),
        ] {
            let (net, errs) = check(input.clone());
            assert!(net.is_none(), "{input}");
            assert!(errs.iter().any(|e| e.contains(want)), "{input}: {errs:?}");
        }
    }

    #[test]
    fn an_unknown_layer_is_reported_as_unknown_whatever_its_arguments() {
        let (_, errs) = check(quote!(N < dense(4 -> 8), conv(8 -> 3, relu), dense(3 -> 2) >));
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(
            errs[0].starts_with("layer 2: unknown layer `conv`")
                && errs[0].contains("help: layers are `dense(IN -> OUT, ...)`")
                && errs[0].contains("`dropout(p)`, `batch_norm`, `layer_norm`"),
            "{}",
            errs[0]
        );
        let (_, errs) = check(quote!(N < dense(4 -> 8), rleu, desne(8 -> 2) >));
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs[0].contains("unknown layer `rleu`; did you mean `relu`?"));
        assert!(errs[1].contains("unknown layer `desne`; did you mean `dense`?"));
    }
}
