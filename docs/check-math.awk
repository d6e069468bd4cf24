# Fails on a backslash before ASCII punctuation inside inline `$...$` math, outside code.
# Inline math goes through the Markdown parser before MathJax sees it, and CommonMark turns
# `\,` into `,`, `\{` into `{`, `\\` into `\` and so on, so such math renders wrong (a stray
# comma for a thin space). ```math blocks are code and keep their backslashes: use them, or
# write the inline math without the escape (`m n_l` for `m\, n_l`, `\lbrace` for `\{`).
# Run by build.sh as `LC_ALL=C awk -f docs/check-math.awk docs/*.md`. A literal dollar in
# prose would toggle the state; the pages have none.
FNR == 1 { fence = 0; math = 0 }
/^[ \t]*```/ { fence = !fence; next }
fence { next }
{
  line = $0
  gsub(/`[^`]*`/, "", line)
  n = split(line, part, "$")
  for (i = 1; i <= n; i++) {
    if (i > 1) math = !math
    if (math && part[i] ~ /\\[[:punct:]]/) {
      printf "%s:%d: backslash before punctuation in inline math, which Markdown drops: $%s$\n", FILENAME, FNR, part[i]
      bad = 1
    }
  }
}
END { exit bad }
