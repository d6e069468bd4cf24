#!/usr/bin/env python3
"""Writes docs/diagnostics.md from tests/ui/fail/*.rs and their .stderr files.

Run from the repository root after `TRYBUILD=overwrite cargo test --test ui`:
`python3 tests/ui/gen_diagnostics_md.py`. A new fail case must be added to `sections`.
"""
import re, pathlib
root = pathlib.Path('tests/ui/fail')
sections = [
 ("Syntax: the definition's shape", [
  ("no_layer_list", "No `<` opens a layer list."),
  ("missing_closing_bracket", "The layer list is not closed by `>`."),
  ("header_extra_tokens", "Tokens between the name and `<` that are not `: f32`/`: f64`."),
  ("scalar_not_a_type", "Something other than a type name after `:`."),
  ("empty_network", "No layer between `<` and `>`."),
 ]),
 ("Syntax: layers", [
  ("layer_not_a_name", "A layer must start with a name."),
  ("missing_comma_after_name", "Two layers without a comma, the first one a bare name."),
  ("missing_comma_between_layers", "Two layers without a comma."),
  ("dense_without_widths", "`dense` without its parenthesized widths."),
  ("missing_arrow", "The widths of `dense` must be written `IN -> OUT`."),
  ("missing_input_width", "A side of `->` is empty."),
  ("float_width", "A width that is not an integer."),
  ("width_expression", "A width that is an expression rather than a literal or a const path."),
  ("width_literal_too_large", "A width literal beyond 128 bits."),
  ("dense_stray_argument", "An argument of `dense` that is neither an activation nor `key = value`."),
  ("option_name_missing", "`= value` without an option name."),
  ("option_malformed", "An option not written `key = value`."),
  ("activation_arg_not_a_number", "A non-numeric activation argument."),
  ("dropout_without_p", "`dropout` without its probability."),
  ("dropout_not_a_number", "A non-numeric drop probability."),
 ]),
 ("Scalar type", [
  ("unknown_scalar", "A scalar type other than `f32` or `f64`, with a suggestion."),
 ]),
 ("Layer kinds and order", [
  ("unknown_layer_suggestion", "An unknown layer name, with a suggestion."),
  ("unknown_layer_with_arguments", "An unknown layer is reported as unknown, under its name, whatever its arguments look like."),
  ("first_layer_not_dense", "The first layer must be `dense`."),
  ("dropout_last", "`dropout` as the output layer."),
  ("hidden_softmax", "`softmax` in a hidden `dense` layer."),
  ("hidden_softmax_layer", "A standalone `softmax` layer that is not last."),
 ]),
 ("Widths", [
  ("dim_mismatch", "Adjacent literal widths disagree."),
  ("dim_mismatch_across_dropout", "Widths are inferred through `dropout` and activation layers, and checked against the layer before."),
  ("zero_width", "A width of 0 (every one is reported)."),
  ("width_exceeds_usize", "A width that does not fit in `usize`."),
  ("width_overflow", "The total parameter count overflows `usize`."),
  ("const_dims_disagree", "Widths given by `const` items that turn out different: reported by the compiler, from the `const` assertion the macro generates."),
  ("const_width_overflow", "Widths given by `const` items whose parameter count overflows `usize`: the generated `const` assertion names the first layer where it does."),
  ("const_width_wrong_type", "A width given by a `const` that is not a `usize`: one error, under its first use however often the width recurs, and none from code that uses the network."),
  ("const_width_not_found", "A width given by a name that is not in scope: likewise one error, under its first use."),
 ]),
 ("Activations", [
  ("unknown_activation_suggestion", "An unknown activation, with a suggestion."),
  ("two_activations", "Two activations in one `dense` layer."),
  ("activation_takes_no_args", "Arguments to an activation that has none."),
  ("activation_too_many_args", "Too many arguments (`leaky_relu` and `elu` take one, `softplus` two)."),
  ("softplus_beta_not_positive", "`softplus` with `beta <= 0`."),
  ("activation_arg_not_finite", "An activation argument that is not finite (`1e999` is infinity)."),
 ]),
 ("Dropout probability", [
  ("dropout_p_one", "`p = 1` would drop everything."),
  ("dropout_negative", "A negative `p`."),
 ]),
 ("Options of dense", [
  ("unknown_option", "An option other than `init`, `bias`, `l1`, `l2` (with a suggestion when one is close)."),
  ("duplicate_option", "The same option twice."),
  ("init_unknown", "An unknown initialization scheme."),
  ("init_not_a_name", "`init` given a number."),
  ("normal_without_std", "`init = normal` without its standard deviation."),
  ("bias_not_bool", "`bias` given something other than `true`/`false`."),
  ("l2_negative", "A negative penalty coefficient (`l1` likewise)."),
 ]),
 ("Options of batch_norm and layer_norm", [
  ("norm_unknown_option", "An option `batch_norm` does not take, with a suggestion (`momentum`, `eps`, `affine`)."),
  ("norm_option_of_another_kind", "`layer_norm` takes `eps` and `affine`; `momentum` belongs to `batch_norm` (its running statistics)."),
  ("norm_momentum_out_of_range", "`momentum` outside [0, 1]."),
  ("norm_eps_not_positive", "`eps` that is not positive."),
  ("norm_width_argument", "A width given to a norm: its width is the previous layer's."),
 ]),
 ("Many mistakes at once", [
  ("several_errors_at_once", "Every independent mistake of a definition is reported in one compile."),
 ]),
 ("Using a network: type errors and the stand-in", [
  ("wrong_input_type", "A sample of the wrong width is a type error at the call."),
  ("wrong_output_type", "The output has the network's output width."),
  ("wrong_scalar_type", "An `f64` network takes `f64` inputs."),
  ("generic_wrong_dims", "A network implements `Network<IN, OUT>` only for its own widths."),
  ("stand_in_no_cascade", "After a DSL error the macro still defines a stand-in type with `new`, `predict` and `forward` (where the widths parsed), so code using the network reports nothing more."),
  ("stand_in_keeps_attributes", "The stand-in keeps the definition's attributes, so a derived trait used later is no follow-on error."),
  ("anonymous_dim_mismatch", "In the anonymous form an error is reported alone: the expression becomes a stand-in block."),
 ]),
]
seen = set()
out = []
out.append("""# Compile-time diagnostics of `network!`

Every diagnostic the macro emits, with a minimal definition and the exact compiler output.
Each example is a compile-fail test, `tests/ui/fail/<name>.rs`, whose expected output
`tests/ui/fail/<name>.stderr` is what is copied here: when a message changes, that test fails
until the `.stderr` (and this page) are updated. Regenerate the outputs with
`TRYBUILD=overwrite cargo test --test ui`, then this page with
`python3 tests/ui/gen_diagnostics_md.py`.

The macro collects every error of a definition before reporting (the layer list is split at its
commas first, so a mistake in one layer never hides the others), points each at the offending
tokens, names the layer (``layer 2 `dropout(0.5)` ``) in the errors about a layer's meaning, and
ends with a `help:` line where there is a fix to suggest. After an error it still defines a
stand-in type of the network's name, so code that uses the network reports no follow-on errors.

Paths and line numbers in the outputs are those of the test files; the examples below omit
their `//` comments (the known-issue cases begin with one, so their line numbers are off by
the comment's length).

## Contents
""")
for title, cases in sections:
    anchor = re.sub(r'[^a-z0-9 -]', '', title.lower()).replace(' ', '-')
    out.append(f"- [{title}](#{anchor}): " + ", ".join(f"`{c}`" for c, _ in cases))
out.append("")
for title, cases in sections:
    out.append(f"## {title}\n")
    for name, desc in cases:
        seen.add(name)
        src = (root / f"{name}.rs").read_text()
        lines = [l for l in src.splitlines() if not l.startswith('//')]
        code = "\n".join(lines).strip()
        stderr = (root / f"{name}.stderr").read_text().rstrip()
        out.append(f"### `{name}`\n\n{desc}\n\n```rust\n{code}\n```\n\n```text\n{stderr}\n```\n")
missing = sorted(p.stem for p in root.glob('*.rs') if p.stem not in seen)
assert not missing, missing
pathlib.Path('docs/diagnostics.md').write_text("\n".join(out).rstrip() + "\n")
