//! The DSL as written: layers with spans, before any meaning is checked.

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::{Attribute, Ident, LitInt, Path, Visibility};

/// A whole `network!` input.
pub struct NetworkAst {
    /// Outer attributes, doc comments included.
    pub attrs: Vec<Attribute>,
    /// Visibility of the generated types.
    pub vis: Visibility,
    /// The type name; `None` for the anonymous expression form.
    pub name: Option<Ident>,
    /// The scalar type after `:`, if given.
    pub scalar: Option<Ident>,
    /// Whether the part before the layer list parsed (else name and scalar are unknown).
    pub header_ok: bool,
    /// The `<` opening the layer list.
    pub open: Span,
    /// The layers, in order.
    pub layers: Vec<LayerAst>,
}

/// One layer as written.
pub struct LayerAst {
    /// Canonical DSL text, e.g. `dense(784 -> 128, relu)`.
    pub text: String,
    /// All of the layer's tokens, for spans covering the layer.
    pub tokens: TokenStream,
    /// What was parsed.
    pub kind: LayerKindAst,
}

/// The syntactic forms of a layer.
pub enum LayerKindAst {
    /// `dense(IN -> OUT, ...)`.
    Dense(DenseAst),
    /// `dropout(p)`.
    Dropout {
        /// The `dropout` keyword.
        keyword: Ident,
        /// The probability, if it parsed as a number.
        p: Option<Number>,
    },
    /// `batch_norm` or `layer_norm`, with options.
    Norm {
        /// The kind's name.
        keyword: Ident,
        /// `key = value` options.
        options: Vec<OptionAst>,
    },
    /// Any other name: an activation layer, or a mistake the checker reports.
    Named(CallAst),
    /// A layer whose syntax was wrong; the error is already recorded.
    Invalid,
}

/// A `dense(...)` layer.
pub struct DenseAst {
    /// Input width.
    pub input: Option<DimAst>,
    /// Output width.
    pub output: Option<DimAst>,
    /// Activations named in the layer (more than one is an error the checker reports).
    pub activations: Vec<CallAst>,
    /// `key = value` options.
    pub options: Vec<OptionAst>,
}

/// A width: an integer literal or a path to a `const` item.
#[derive(Clone)]
pub enum DimAst {
    /// An integer literal and its value.
    Lit(LitInt, u128),
    /// A path to a `const` item.
    Path(Path),
}

impl DimAst {
    /// The width as written.
    pub fn text(&self) -> String {
        match self {
            DimAst::Lit(lit, _) => lit.to_string(),
            DimAst::Path(p) => path_text(p),
        }
    }

    /// Tokens covering the width, for error spans.
    pub fn tokens(&self) -> TokenStream {
        match self {
            DimAst::Lit(lit, _) => lit.to_token_stream(),
            DimAst::Path(p) => p.to_token_stream(),
        }
    }
}

/// A path as text without the spaces `to_string` puts around `::`.
pub fn path_text(p: &Path) -> String {
    p.to_token_stream().to_string().replace(' ', "")
}

/// A name with optional numeric arguments: `relu`, `leaky_relu(0.2)`, `normal(0.01)`.
#[derive(Clone)]
pub struct CallAst {
    /// The name.
    pub name: Ident,
    /// The arguments, if parenthesized.
    pub args: Option<Vec<Number>>,
    /// All tokens, for spans.
    pub tokens: TokenStream,
}

impl CallAst {
    /// Canonical text.
    pub fn text(&self) -> String {
        match &self.args {
            None => self.name.to_string(),
            Some(args) => {
                let args: Vec<&str> = args.iter().map(|a| a.text.as_str()).collect();
                format!("{}({})", self.name, args.join(", "))
            }
        }
    }
}

/// A numeric literal, possibly negative.
#[derive(Clone)]
pub struct Number {
    /// Its value (integers widened).
    pub value: f64,
    /// As written.
    pub text: String,
    /// Tokens, for spans.
    pub tokens: TokenStream,
}

/// `key = value`.
pub struct OptionAst {
    /// The key.
    pub key: Ident,
    /// The value.
    pub value: OptionValue,
    /// All tokens, for spans.
    pub tokens: TokenStream,
}

impl OptionAst {
    /// Canonical text.
    pub fn text(&self) -> String {
        let v = match &self.value {
            OptionValue::Number(n) => n.text.clone(),
            OptionValue::Call(c) => c.text(),
            OptionValue::Other(t) => t.to_string(),
        };
        format!("{} = {v}", self.key)
    }
}

/// An option's value.
pub enum OptionValue {
    /// A number.
    Number(Number),
    /// A name, possibly with arguments (`he`, `false`, `normal(0.01)`).
    Call(CallAst),
    /// Anything else (reported by the checker).
    Other(TokenStream),
}
