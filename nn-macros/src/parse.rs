//! Tokens to [`NetworkAst`]: the syntax of the DSL, with every error collected.
//!
//! The layer list is split at its top-level commas first, so a mistake in one layer never
//! hides the others.

use crate::ast::*;
use crate::diag::Diagnostics;
use crate::suggest::did_you_mean;
use crate::table::{self, ACTIVATION_NAMES};
use proc_macro2::{Delimiter, Group, Spacing, Span, TokenStream, TokenTree};
use quote::ToTokens;
use syn::parse::{ParseStream, Parser};
use syn::{Attribute, Ident, LitInt, Path, Visibility};

/// Parses a whole `network!` input. Returns `None` when not even the layer list could be found.
pub fn network(input: TokenStream, diag: &mut Diagnostics) -> Option<NetworkAst> {
    let tokens: Vec<TokenTree> = input.into_iter().collect();
    let Some(open) = tokens.iter().position(|t| is_punct(t, '<')) else {
        let span = tokens.first().map_or_else(Span::call_site, TokenTree::span);
        diag.error(
            span,
            "expected a layer list: `network! { Name < dense(IN -> OUT, activation), ... > }`",
        );
        return None;
    };
    let header: TokenStream = tokens[..open].iter().cloned().collect();
    let open_span = tokens[open].span();
    let (attrs, vis, name, scalar, header_ok) = match header_parser.parse2(header) {
        Ok((attrs, vis, name, scalar)) => (attrs, vis, name, scalar, true),
        Err(e) => {
            diag.push(e);
            (Vec::new(), Visibility::Inherited, None, None, false)
        }
    };
    let body = &tokens[open + 1..];
    let body = match body.last() {
        Some(t) if is_punct(t, '>') => &body[..body.len() - 1],
        last => {
            let span = last.map_or(open_span, TokenTree::span);
            diag.error(
                span,
                "expected `>` after the last layer, to close the layer list\nhelp: `Name < dense(4 -> 2, relu), ... >`",
            );
            body
        }
    };
    let layers = split_commas(body)
        .into_iter()
        .filter(|seg| !seg.is_empty())
        .enumerate()
        .map(|(i, seg)| layer(i, seg, diag))
        .collect();
    Some(NetworkAst {
        attrs,
        vis,
        name,
        scalar,
        header_ok,
        open: open_span,
        layers,
    })
}

type Header = (Vec<Attribute>, Visibility, Option<Ident>, Option<Ident>);

/// `#[attr]* vis? Name? (: scalar)?`
fn header_parser(input: ParseStream) -> syn::Result<Header> {
    let attrs = input.call(Attribute::parse_outer)?;
    let vis: Visibility = input.parse()?;
    let name: Option<Ident> = if input.peek(Ident) {
        Some(input.parse()?)
    } else {
        None
    };
    let scalar = if input.peek(syn::Token![:]) {
        input.parse::<syn::Token![:]>()?;
        Some(input.parse::<Ident>().map_err(|e| {
            syn::Error::new(
                e.span(),
                "expected the scalar type `f32` or `f64` after `:`",
            )
        })?)
    } else {
        None
    };
    if !input.is_empty() {
        return Err(input.error(
            "unexpected tokens before the layer list; expected `[pub] Name [: f32|f64] < layers >`",
        ));
    }
    Ok((attrs, vis, name, scalar))
}

fn is_punct(t: &TokenTree, c: char) -> bool {
    matches!(t, TokenTree::Punct(p) if p.as_char() == c)
}

/// Splits tokens at top-level commas (groups are single tokens, so nested commas stay).
fn split_commas(tokens: &[TokenTree]) -> Vec<Vec<TokenTree>> {
    let mut out = vec![Vec::new()];
    for t in tokens {
        if is_punct(t, ',') {
            out.push(Vec::new());
        } else if let Some(last) = out.last_mut() {
            last.push(t.clone());
        }
    }
    if out.last().is_some_and(Vec::is_empty) && out.len() > 1 {
        out.pop(); // trailing comma
    }
    out
}

fn stream(tokens: &[TokenTree]) -> TokenStream {
    tokens.iter().cloned().collect()
}

/// Token text without the spaces `to_string` puts inside calls: `dense(2 -> 4, relu)`.
fn compact(tokens: &TokenStream) -> String {
    tokens
        .to_string()
        .replace(" (", "(")
        .replace("( ", "(")
        .replace(" )", ")")
        .replace(" ,", ",")
}

/// One layer: `name` or `name(args)`; `i` is its position, from 0.
fn layer(i: usize, seg: Vec<TokenTree>, diag: &mut Diagnostics) -> LayerAst {
    let tokens = stream(&seg);
    let invalid = |text: String, tokens: TokenStream| LayerAst {
        text,
        tokens,
        kind: LayerKindAst::Invalid,
    };
    let raw_text = compact(&tokens);
    let ctx = format!("layer {} `{raw_text}`", i + 1);
    let TokenTree::Ident(name) = &seg[0] else {
        diag.push(syn::Error::new_spanned(
            &tokens,
            format!("layer {}: expected a layer, found `{raw_text}`\nhelp: layers are `dense(IN -> OUT, ...)`, `dropout(p)` or an activation such as `relu`", i + 1),
        ));
        return invalid(raw_text, tokens);
    };
    let group = match seg.get(1) {
        None => None,
        Some(TokenTree::Group(g)) if g.delimiter() == Delimiter::Parenthesis => Some(g.clone()),
        Some(other) => {
            diag.error(
                other.span(),
                format!(
                    "{ctx}: expected `(` or `,` after `{name}`, found `{other}`\nhelp: layers are separated by commas: `dense(2 -> 4, relu), dropout(0.5)`"
                ),
            );
            return invalid(raw_text, tokens);
        }
    };
    if let Some(extra) = seg.get(2) {
        diag.error(
            extra.span(),
            format!("{ctx}: expected `,` between layers, found `{extra}`\nhelp: separate layers with commas: `dense(2 -> 4, relu), dropout(0.5)`"),
        );
        return invalid(raw_text, tokens);
    }
    match (name.to_string().as_str(), group) {
        ("dense", Some(g)) => dense(&ctx, &g, tokens, diag),
        ("dense", None) => {
            diag.error(
                name.span(),
                format!("{ctx}: `dense` needs its widths\nhelp: write `dense(IN -> OUT, activation)`, e.g. `dense(784 -> 128, relu)`"),
            );
            invalid(raw_text, tokens)
        }
        ("dropout", g) => {
            let p = match &g {
                None => {
                    diag.error(
                        name.span(),
                        format!("{ctx}: `dropout` needs its drop probability\nhelp: write e.g. `dropout(0.5)`"),
                    );
                    None
                }
                Some(g) => {
                    let inner: Vec<TokenTree> = g.stream().into_iter().collect();
                    let p = match split_commas(&inner).as_slice() {
                        [one] => number(one),
                        _ => None,
                    };
                    if p.is_none() {
                        let found = g.stream();
                        diag.push(syn::Error::new_spanned(
                            if found.is_empty() { g.to_token_stream() } else { found.clone() },
                            format!(
                                "{ctx}: expected the drop probability as one number in [0, 1), found `{}`\nhelp: write e.g. `dropout(0.5)`",
                                compact(&found)
                            ),
                        ));
                    }
                    p
                }
            };
            let text = match &p {
                Some(p) => format!("dropout({})", p.text),
                None => raw_text.replace(' ', ""),
            };
            LayerAst {
                text,
                tokens,
                kind: LayerKindAst::Dropout {
                    keyword: name.clone(),
                    p,
                },
            }
        }
        ("batch_norm" | "layer_norm", g) => norm(&ctx, name, g.as_ref(), tokens, diag),
        (other, _) if !ACTIVATION_NAMES.contains(&other) => {
            unknown_layer(i, name, diag);
            invalid(raw_text, tokens)
        }
        (_, g) => match call(&ctx, name.clone(), g.as_ref(), diag) {
            Some(c) => LayerAst {
                text: c.text(),
                tokens,
                kind: LayerKindAst::Named(c),
            },
            None => invalid(raw_text, tokens),
        },
    }
}

/// A layer name that is neither a kind of the table nor an activation: reported under the name,
/// before its arguments are looked at (`conv(4 -> 3, relu)` is an unknown layer, not an
/// activation with odd arguments), with the kinds there are and the closest of them.
fn unknown_layer(i: usize, name: &Ident, diag: &mut Diagnostics) {
    diag.error(
        name.span(),
        format!(
            "layer {}: unknown layer `{name}`{}\nhelp: layers are {} and the activations {}",
            i + 1,
            did_you_mean(&name.to_string(), &table::layer_names()),
            table::kinds_help(),
            ACTIVATION_NAMES.join(", ")
        ),
    );
}

/// `name` or `name(n, ...)` with numeric arguments.
fn call(ctx: &str, name: Ident, group: Option<&Group>, diag: &mut Diagnostics) -> Option<CallAst> {
    let mut tokens = name.to_token_stream();
    let args = match group {
        None => None,
        Some(g) => {
            g.to_tokens(&mut tokens);
            let inner: Vec<TokenTree> = g.stream().into_iter().collect();
            let mut args = Vec::new();
            for seg in split_commas(&inner) {
                match number(&seg) {
                    Some(n) => args.push(n),
                    None => {
                        let s = stream(&seg);
                        diag.push(syn::Error::new_spanned(
                            if seg.is_empty() {
                                g.to_token_stream()
                            } else {
                                s.clone()
                            },
                            format!("{ctx}: expected a number as argument of `{name}`, found `{}`\nhelp: arguments are numbers, e.g. `leaky_relu(0.2)` or `normal(0.01)`", compact(&s)),
                        ));
                        return None;
                    }
                }
            }
            Some(args)
        }
    };
    Some(CallAst { name, args, tokens })
}

/// A numeric literal, optionally preceded by `-`.
fn number(tokens: &[TokenTree]) -> Option<Number> {
    let (neg, lit) = match tokens {
        [TokenTree::Literal(l)] => (false, l),
        [TokenTree::Punct(p), TokenTree::Literal(l)] if p.as_char() == '-' => (true, l),
        _ => return None,
    };
    let lit = syn::Lit::new(lit.clone());
    let value = match &lit {
        syn::Lit::Int(i) => i.base10_digits().parse::<f64>().ok()?,
        syn::Lit::Float(f) => f.base10_digits().parse::<f64>().ok()?,
        _ => return None,
    };
    let sign = if neg { "-" } else { "" };
    Some(Number {
        value: if neg { -value } else { value },
        text: format!("{sign}{}", lit.to_token_stream()),
        tokens: stream(tokens),
    })
}

/// `dense(IN -> OUT, activation?, key = value, ...)`.
fn dense(ctx: &str, g: &Group, tokens: TokenStream, diag: &mut Diagnostics) -> LayerAst {
    let inner: Vec<TokenTree> = g.stream().into_iter().collect();
    let segs = split_commas(&inner);
    let (input, output) = dims(ctx, segs.first().map_or(&[][..], Vec::as_slice), g, diag);
    let mut activations = Vec::new();
    let mut options = Vec::new();
    for seg in segs.iter().skip(1) {
        if seg.iter().any(|t| is_punct(t, '=')) {
            if let Some(o) = option(ctx, seg, "dense", diag) {
                options.push(o);
            }
        } else {
            match seg.as_slice() {
                [TokenTree::Ident(name)] => {
                    if let Some(c) = call(ctx, name.clone(), None, diag) {
                        activations.push(c);
                    }
                }
                [TokenTree::Ident(name), TokenTree::Group(g)]
                    if g.delimiter() == Delimiter::Parenthesis =>
                {
                    if let Some(c) = call(ctx, name.clone(), Some(g), diag) {
                        activations.push(c);
                    }
                }
                other => diag.push(syn::Error::new_spanned(
                    stream(other),
                    format!(
                        "{ctx}: expected an activation or an option `key = value`, found `{}`\nhelp: e.g. `dense(784 -> 128, relu, init = he, l2 = 1e-4)`",
                        compact(&stream(other))
                    ),
                )),
            }
        }
    }
    let text = {
        let mut parts = vec![format!(
            "{} -> {}",
            input.as_ref().map_or("?".into(), DimAst::text),
            output.as_ref().map_or("?".into(), DimAst::text)
        )];
        parts.extend(activations.iter().map(CallAst::text));
        parts.extend(options.iter().map(OptionAst::text));
        format!("dense({})", parts.join(", "))
    };
    LayerAst {
        text,
        tokens,
        kind: LayerKindAst::Dense(DenseAst {
            input,
            output,
            activations,
            options,
        }),
    }
}

/// `key = value` inside the parentheses of a layer of kind `kind` (whose options the help
/// lists). `None` after an error.
fn option(ctx: &str, seg: &[TokenTree], kind: &str, diag: &mut Diagnostics) -> Option<OptionAst> {
    let eq = seg.iter().position(|t| is_punct(t, '='))?;
    let TokenTree::Ident(key) = &seg[0] else {
        diag.push(syn::Error::new_spanned(
            stream(seg),
            format!(
                "{ctx}: expected an option name before `=`\nhelp: the options of `{kind}` are {}",
                table::options_help(kind)
            ),
        ));
        return None;
    };
    if eq != 1 {
        diag.push(syn::Error::new_spanned(
            stream(seg),
            format!("{ctx}: expected `{key} = value`, found `{}`\nhelp: write one option per comma, e.g. `init = he, l2 = 1e-4`", compact(&stream(seg))),
        ));
        return None;
    }
    let value_tokens = &seg[2..];
    let value = if let Some(n) = number(value_tokens) {
        OptionValue::Number(n)
    } else {
        match value_tokens {
            [TokenTree::Ident(i)] => OptionValue::Call(CallAst {
                name: i.clone(),
                args: None,
                tokens: i.to_token_stream(),
            }),
            [TokenTree::Ident(i), TokenTree::Group(g)]
                if g.delimiter() == Delimiter::Parenthesis =>
            {
                OptionValue::Call(call(ctx, i.clone(), Some(g), diag)?)
            }
            other => OptionValue::Other(stream(other)),
        }
    };
    Some(OptionAst {
        key: key.clone(),
        value,
        tokens: stream(seg),
    })
}

/// `batch_norm`, `layer_norm`, or either with options in parentheses.
fn norm(
    ctx: &str,
    name: &Ident,
    g: Option<&Group>,
    tokens: TokenStream,
    diag: &mut Diagnostics,
) -> LayerAst {
    let mut options = Vec::new();
    if let Some(g) = g {
        let inner: Vec<TokenTree> = g.stream().into_iter().collect();
        for seg in split_commas(&inner) {
            if seg.iter().any(|t| is_punct(t, '=')) {
                if let Some(o) = option(ctx, &seg, &name.to_string(), diag) {
                    options.push(o);
                }
            } else {
                let kind = table::kind(&name.to_string()).map_or("", |k| k.syntax);
                diag.push(syn::Error::new_spanned(
                    if seg.is_empty() { g.to_token_stream() } else { stream(&seg) },
                    format!(
                        "{ctx}: expected an option `key = value`, found `{}`\nhelp: write `{name}` alone or with options, `{kind}`; its width is the previous layer's",
                        compact(&stream(&seg))
                    ),
                ));
            }
        }
    }
    let text = match options.is_empty() {
        true => name.to_string(),
        false => {
            let parts: Vec<String> = options.iter().map(OptionAst::text).collect();
            format!("{name}({})", parts.join(", "))
        }
    };
    LayerAst {
        text,
        tokens,
        kind: LayerKindAst::Norm {
            keyword: name.clone(),
            options,
        },
    }
}

/// `IN -> OUT`.
fn dims(
    ctx: &str,
    seg: &[TokenTree],
    g: &Group,
    diag: &mut Diagnostics,
) -> (Option<DimAst>, Option<DimAst>) {
    let arrow = seg.windows(2).position(|w| {
        matches!(&w[0], TokenTree::Punct(p) if p.as_char() == '-' && p.spacing() == Spacing::Joint)
            && is_punct(&w[1], '>')
    });
    let Some(arrow) = arrow else {
        let span_tokens = if seg.is_empty() {
            g.to_token_stream()
        } else {
            stream(seg)
        };
        diag.push(syn::Error::new_spanned(
            span_tokens,
            format!(
                "{ctx}: expected the layer's widths `IN -> OUT`, found `{}`\nhelp: write e.g. `dense(784 -> 128, relu)`",
                compact(&stream(seg))
            ),
        ));
        return (None, None);
    };
    let input = dim(ctx, &seg[..arrow], &seg[arrow], "input", diag);
    let output = dim(ctx, &seg[arrow + 2..], &seg[arrow + 1], "output", diag);
    (input, output)
}

/// An integer literal or a path to a const.
fn dim(
    ctx: &str,
    tokens: &[TokenTree],
    near: &TokenTree,
    which: &str,
    diag: &mut Diagnostics,
) -> Option<DimAst> {
    const HELP: &str = "help: widths are integer literals such as `128` or paths to `const` items such as `HIDDEN`";
    if tokens.is_empty() {
        diag.error(
            near.span(),
            format!("{ctx}: expected the {which} width next to `->`\n{HELP}"),
        );
        return None;
    }
    if let [TokenTree::Literal(l)] = tokens {
        return match syn::Lit::new(l.clone()) {
            syn::Lit::Int(i) if i.suffix().is_empty() || i.suffix() == "usize" => {
                match i.base10_parse::<u128>() {
                    Ok(v) => Some(DimAst::Lit(LitInt::new(&i.to_string(), i.span()), v)),
                    Err(_) => {
                        diag.error(
                            l.span(),
                            format!("{ctx}: the {which} width `{l}` is too large for any machine"),
                        );
                        None
                    }
                }
            }
            _ => {
                diag.error(
                    l.span(),
                    format!("{ctx}: expected the {which} width as a positive integer or a path to a `const`, found `{l}`\n{HELP}"),
                );
                None
            }
        };
    }
    let s = stream(tokens);
    match syn::parse2::<Path>(s.clone()) {
        Ok(p) => Some(DimAst::Path(p)),
        Err(_) => {
            diag.push(syn::Error::new_spanned(
                &s,
                format!(
                    "{ctx}: expected the {which} width as a positive integer or a path to a `const`, found `{}`\n{HELP}",
                    compact(&s)
                ),
            ));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn parse(t: TokenStream) -> (Option<NetworkAst>, Vec<String>) {
        let mut d = Diagnostics::default();
        let ast = network(t, &mut d);
        (ast, d.messages())
    }

    #[test]
    fn parses_the_mnist_definition() {
        let (ast, errs) = parse(quote! {
            /// Doc.
            #[derive(Clone)]
            pub Mnist < dense(784 -> 128, relu), dropout(0.5), dense(128 -> 10, softmax) >
        });
        assert!(errs.is_empty(), "{errs:?}");
        let ast = ast.expect("ast");
        assert_eq!(ast.attrs.len(), 2);
        assert_eq!(ast.name.expect("name").to_string(), "Mnist");
        let texts: Vec<_> = ast.layers.iter().map(|l| l.text.clone()).collect();
        assert_eq!(
            texts,
            [
                "dense(784 -> 128, relu)",
                "dropout(0.5)",
                "dense(128 -> 10, softmax)"
            ]
        );
    }

    #[test]
    fn parses_options_consts_scalar_and_activation_layers() {
        let (ast, errs) = parse(quote! {
            Net: f64 < dense(IN -> crate::H, leaky_relu(0.2), init = normal(0.01), bias = false, l2 = 1e-4,), relu, >
        });
        assert!(errs.is_empty(), "{errs:?}");
        let ast = ast.expect("ast");
        assert_eq!(ast.scalar.expect("scalar").to_string(), "f64");
        assert_eq!(
            ast.layers[0].text,
            "dense(IN -> crate::H, leaky_relu(0.2), init = normal(0.01), bias = false, l2 = 1e-4)"
        );
        assert!(matches!(ast.layers[1].kind, LayerKindAst::Named(_)));
    }

    #[test]
    fn anonymous_form_has_no_name() {
        let (ast, errs) = parse(quote! { < dense(2 -> 1, sigmoid) > });
        assert!(errs.is_empty());
        assert!(ast.expect("ast").name.is_none());
    }

    #[test]
    fn reports_every_syntax_error() {
        let (_, errs) = parse(quote! {
            N < dense(784 128, relu), dropout(half), 3, dense(-2 -> 1.5) >
        });
        assert_eq!(errs.len(), 5, "{errs:#?}");
        assert!(errs[0].contains("`IN -> OUT`"));
        assert!(errs[1].contains("drop probability"));
        assert!(errs[2].contains("expected a layer"));
    }

    #[test]
    fn missing_brackets_are_errors() {
        assert_eq!(parse(quote! { N dense(1 -> 2) }).1.len(), 1);
        let (_, errs) = parse(quote! { N < dense(1 -> 2) });
        assert!(errs[0].contains("expected `>`"), "{errs:?}");
    }
}
