//! Go's `text/tabwriter` as Docker's tables use it (min width 10, tab
//! width 1, padding 3, space padding, no flags): tab-terminated cells are
//! aligned in column blocks; the text after a line's last tab is not.
//! It only transforms text.

/// Align `text` (lines of tab-terminated cells) the way Go's tabwriter does.
pub fn align(text: &str, minwidth: usize, padding: usize) -> String {
    let mut lines: Vec<Vec<&str>> = text.split('\n').map(|l| l.split('\t').collect()).collect();
    // A final newline leaves an empty last line that tabwriter never prints.
    let ends_with_newline = text.ends_with('\n');
    if ends_with_newline {
        lines.pop();
    }
    let mut out = String::new();
    let mut widths: Vec<usize> = Vec::new();
    format(&lines, 0, lines.len(), &mut widths, minwidth, padding, &mut out);
    if !ends_with_newline && out.ends_with('\n') {
        out.pop();
    }
    out
}

fn width(s: &str) -> usize {
    s.chars().count()
}

#[allow(clippy::too_many_arguments)]
fn format(
    lines: &[Vec<&str>],
    mut line0: usize,
    line1: usize,
    widths: &mut Vec<usize>,
    minwidth: usize,
    padding: usize,
    out: &mut String,
) {
    let column = widths.len();
    let mut this = line0;
    while this < line1 {
        if column + 1 >= lines[this].len() {
            this += 1;
            continue;
        }
        // A cell in this column: print the lines before the block.
        write_lines(lines, line0, this, widths, out);
        line0 = this;
        let mut w = minwidth;
        while this < line1 {
            let line = &lines[this];
            if column + 1 >= line.len() {
                break;
            }
            w = w.max(width(line[column]) + padding);
            this += 1;
        }
        widths.push(w);
        format(lines, line0, this, widths, minwidth, padding, out);
        widths.pop();
        line0 = this;
    }
    write_lines(lines, line0, line1, widths, out);
}

fn write_lines(lines: &[Vec<&str>], line0: usize, line1: usize, widths: &[usize], out: &mut String) {
    for line in &lines[line0..line1] {
        for (j, cell) in line.iter().enumerate() {
            out.push_str(cell);
            if j < widths.len() && j + 1 < line.len() {
                for _ in width(cell)..widths[j] {
                    out.push(' ');
                }
            }
        }
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::align;

    /// Expected text printed by Go's text/tabwriter (NewWriter(w, 10, 1, 3, ' ', 0)).
    #[test]
    fn column_blocks_match_go() {
        let input =
            "CONTAINER ID\tNAMES\tNAMES \n0123456789ab\tWEB\tweb \nA\tB\nlong-value-here\tC\nx\n\ta\tb\tc\nsingle\n";
        let want = "CONTAINER ID      NAMES     NAMES \n0123456789ab      WEB       web \nA                 B\nlong-value-here   C\nx\n          a         b         c\nsingle\n";
        assert_eq!(align(input, 10, 3), want);
    }
}
