//! The checked network: every layer's kind, widths and options, ready to expand.

use proc_macro2::{Span, TokenStream};
use quote::{quote, ToTokens};
use syn::ext::IdentExt;
use syn::{Attribute, Ident, Path, Visibility};

/// A network that passed every check.
pub struct Network {
    /// Outer attributes (docs included) for the network struct.
    pub attrs: Vec<Attribute>,
    /// Visibility.
    pub vis: Visibility,
    /// Type name (generated for the anonymous form).
    pub name: Ident,
    /// Whether the definition was the anonymous expression form.
    pub anonymous: bool,
    /// Scalar type.
    pub scalar: Scalar,
    /// The layers, in order.
    pub layers: Vec<Layer>,
    /// The widths given by `const` paths, each once, in order of first use.
    pub const_widths: Vec<ConstWidth>,
    /// Width checks the macro could not decide because a width is a const path.
    pub const_checks: Vec<ConstCheck>,
}

impl Network {
    /// The layer list as canonical DSL text.
    pub fn dsl(&self) -> String {
        let texts: Vec<&str> = self.layers.iter().map(|l| l.text.as_str()).collect();
        texts.join(", ")
    }

    /// Input width.
    pub fn input(&self) -> &Dim {
        &self.layers[0].input
    }

    /// Output width.
    pub fn output(&self) -> &Dim {
        &self.layers[self.layers.len() - 1].output
    }
}

/// The scalar type.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Scalar {
    /// `f32`.
    F32,
    /// `f64`.
    F64,
}

impl Scalar {
    /// A literal of this type.
    pub fn lit(self, v: f64) -> TokenStream {
        match self {
            Scalar::F32 => proc_macro2::Literal::f32_suffixed(v as f32).to_token_stream(),
            Scalar::F64 => proc_macro2::Literal::f64_suffixed(v).to_token_stream(),
        }
    }
}

impl ToTokens for Scalar {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        tokens.extend(match self {
            Scalar::F32 => quote!(f32),
            Scalar::F64 => quote!(f64),
        });
    }
}

/// A width.
#[derive(Clone)]
pub enum Dim {
    /// Known to the macro.
    Lit(usize),
    /// Given by a path to a `const` item, known only to the compiler.
    Const(ConstWidth),
}

impl Dim {
    /// The width as written.
    pub fn text(&self) -> String {
        match self {
            Dim::Lit(n) => n.to_string(),
            Dim::Const(c) => crate::ast::path_text(&c.path),
        }
    }
}

impl ToTokens for Dim {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        tokens.extend(match self {
            Dim::Lit(n) => proc_macro2::Literal::usize_unsuffixed(*n).to_token_stream(),
            Dim::Const(c) => {
                let (owner, item) = (&c.owner, &c.item);
                quote!({ #owner::#item })
            }
        });
    }
}

/// A width given by a path to a `const` item, which the macro cannot read. The generated
/// code names the path once, with the user's span, in an associated const of the network,
/// `const WIDTH_HIDDEN: usize = HIDDEN;`, and every other use is `{ Net::WIDTH_HIDDEN }`: a
/// const of another type than `usize`, or a name not in scope, is one error under the width
/// the user wrote, not one per use.
#[derive(Clone)]
pub struct ConstWidth {
    /// The path as first written, with its spans.
    pub path: Path,
    /// The network type that holds the generated const.
    pub owner: Ident,
    /// The generated const: `WIDTH_` and the path's last segment, upper-cased.
    pub item: Ident,
}

/// The const widths of one network, each path once: the first use of a path declares its
/// [`ConstWidth`], later uses written the same way share it.
pub struct ConstWidths {
    owner: Ident,
    widths: Vec<ConstWidth>,
}

impl ConstWidths {
    /// No widths yet, for the network type `owner`.
    pub fn new(owner: Ident) -> Self {
        ConstWidths {
            owner,
            widths: Vec::new(),
        }
    }

    /// The width given by `path`.
    pub fn dim(&mut self, path: &Path) -> Dim {
        let text = crate::ast::path_text(path);
        if let Some(c) = self
            .widths
            .iter()
            .find(|c| crate::ast::path_text(&c.path) == text)
        {
            return Dim::Const(c.clone());
        }
        // `WIDTH_HIDDEN` for `crate::consts::HIDDEN`; `WIDTH_HIDDEN_2` for a second path
        // ending in `HIDDEN`; `WIDTH_3` (the position) for a name that is not ASCII.
        let last = path
            .segments
            .last()
            .map(|s| s.ident.unraw().to_string())
            .unwrap_or_default();
        let stem =
            if !last.is_empty() && last.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                last.to_ascii_uppercase()
            } else {
                (self.widths.len() + 1).to_string()
            };
        let taken = |name: &str| self.widths.iter().any(|c| c.item == name);
        let mut name = format!("WIDTH_{stem}");
        let mut k = 2;
        while taken(&name) {
            name = format!("WIDTH_{stem}_{k}");
            k += 1;
        }
        let width = ConstWidth {
            path: path.clone(),
            owner: self.owner.clone(),
            item: Ident::new(&name, Span::call_site()),
        };
        self.widths.push(width.clone());
        Dim::Const(width)
    }

    /// Every width, in order of first use.
    pub fn into_vec(self) -> Vec<ConstWidth> {
        self.widths
    }
}

/// One layer.
pub struct Layer {
    /// Position in the layer list, from 0.
    pub position: usize,
    /// Field-style name: `dense0`, `dropout0`, `relu0`.
    pub name: Ident,
    /// Canonical DSL text.
    pub text: String,
    /// The layer's tokens, for error spans.
    pub tokens: TokenStream,
    /// Input width.
    pub input: Dim,
    /// Output width.
    pub output: Dim,
    /// What it computes.
    pub kind: LayerKind,
}

/// What a layer computes.
pub enum LayerKind {
    /// `dense(...)`.
    Dense {
        /// Activation applied to `W x + b`.
        activation: Act,
        /// Weight initialization.
        init: InitChoice,
        /// Whether the layer has a bias.
        bias: bool,
        /// L1 penalty coefficient.
        l1: f64,
        /// L2 penalty coefficient.
        l2: f64,
    },
    /// `dropout(p)`.
    Dropout {
        /// Drop probability.
        p: f64,
    },
    /// A standalone activation layer.
    Activation(Act),
    /// `batch_norm(...)`: PyTorch's `BatchNorm1d` over the features.
    BatchNorm {
        /// The weight of a batch in the running statistics.
        momentum: f64,
        /// Added to the variance.
        eps: f64,
        /// Whether `γ` and `β` are learned.
        affine: bool,
    },
    /// `layer_norm(...)`: PyTorch's `LayerNorm` over the features of each sample.
    LayerNorm {
        /// Added to the variance.
        eps: f64,
        /// Whether `γ` and `β` are learned.
        affine: bool,
    },
}

/// An activation with its parameters.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Act {
    /// `identity` / `linear`.
    Identity,
    /// `sigmoid`.
    Sigmoid,
    /// `tanh`.
    Tanh,
    /// `relu`.
    Relu,
    /// `leaky_relu(negative_slope)`.
    LeakyRelu(f64),
    /// `elu(alpha)`.
    Elu(f64),
    /// `gelu` (exact).
    Gelu,
    /// `gelu_tanh`.
    GeluTanh,
    /// `softplus(beta, threshold)`.
    Softplus(f64, f64),
    /// `silu`.
    Silu,
    /// `softmax`.
    Softmax,
}

impl Act {
    /// The DSL name.
    pub fn name(self) -> &'static str {
        match self {
            Act::Identity => "identity",
            Act::Sigmoid => "sigmoid",
            Act::Tanh => "tanh",
            Act::Relu => "relu",
            Act::LeakyRelu(_) => "leaky_relu",
            Act::Elu(_) => "elu",
            Act::Gelu => "gelu",
            Act::GeluTanh => "gelu_tanh",
            Act::Softplus(..) => "softplus",
            Act::Silu => "silu",
            Act::Softmax => "softmax",
        }
    }
}

/// How a dense layer's weights are initialized: as the DSL says, or by the scheme the
/// runtime names for an activation (`Activation::INIT`: He for the ReLU family, Xavier for
/// the rest), read in the generated code rather than restated here.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum InitChoice {
    /// `init = ..` in the DSL.
    Given(Init),
    /// The default of this activation: the layer's own, or for an identity dense layer that
    /// of the activation layer that follows it.
    Of(Act),
}

/// Weight initialization.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Init {
    /// He normal.
    He,
    /// Xavier uniform.
    Xavier,
    /// LeCun normal.
    Lecun,
    /// Zeros.
    Zeros,
    /// Normal with this standard deviation.
    Normal(f64),
}

/// A width check the macro cannot decide because a width is a const path: expanded to a
/// `const` assertion the compiler evaluates.
pub struct ConstCheck {
    /// The condition that must hold, e.g. `{ Net::WIDTH_HIDDEN } == { Net::WIDTH_H2 }`.
    pub cond: TokenStream,
    /// The assertion message.
    pub message: String,
    /// Where to point the error.
    pub span: Span,
}
