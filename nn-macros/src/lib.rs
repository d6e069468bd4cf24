//! placeholder
use proc_macro::TokenStream;
/// The network macro.
#[proc_macro]
pub fn network(input: TokenStream) -> TokenStream { input }
