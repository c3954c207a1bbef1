//! The one table writer of the CLI's human output: `list`, `status` and `usage` (and the
//! bare `sandbox-deck` when piped) lay out their rows with it.
//!
//! It only pads and joins: what goes into a cell is the caller's, and so is printing each
//! line through `say!` (the sanitizer), which keeps cells aligned by the same character
//! counts `format!` pads by.

use std::fmt::Write;

#[derive(Debug, Clone, Copy)]
pub(super) enum Align {
    Left,
    Right,
}

/// How wide a column is.
#[derive(Debug, Clone, Copy)]
pub(super) enum Width {
    /// Each cell padded to this many characters on its own: a longer cell pushes the rest of
    /// its line right and leaves the other lines alone (so the table can be printed as the
    /// rows come, and one odd name does not widen every line).
    AtLeast(usize),
    /// As wide as its widest cell, header included.
    Fit,
}

#[derive(Debug)]
struct Column {
    header: String,
    align: Align,
    width: Width,
}

/// Columns with a header line, then rows. A left-aligned last column is not padded (nothing
/// follows it), so lines carry no trailing blanks.
#[derive(Debug)]
pub(super) struct Table {
    columns: Vec<Column>,
    /// Between two columns.
    gap: &'static str,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub(super) fn new(gap: &'static str) -> Table {
        Table {
            columns: Vec::new(),
            gap,
            rows: Vec::new(),
        }
    }

    pub(super) fn column(mut self, header: &str, align: Align, width: Width) -> Table {
        self.columns.push(Column {
            header: header.to_owned(),
            align,
            width,
        });
        self
    }

    /// One row, a cell for each column.
    pub(super) fn row(&mut self, cells: Vec<String>) {
        debug_assert_eq!(cells.len(), self.columns.len(), "{cells:?}");
        self.rows.push(cells);
    }

    /// The header line, then one line per row.
    pub(super) fn lines(&self) -> Vec<String> {
        let widths = self.widths();
        let header: Vec<&str> = self.columns.iter().map(|c| c.header.as_str()).collect();
        std::iter::once(self.line(&header, &widths))
            .chain(self.rows.iter().map(|row| self.line(row, &widths)))
            .collect()
    }

    fn widths(&self) -> Vec<usize> {
        let chars = |cell: &str| cell.chars().count();
        self.columns
            .iter()
            .enumerate()
            .map(|(i, column)| match column.width {
                Width::AtLeast(width) => width,
                Width::Fit => self
                    .rows
                    .iter()
                    .map(|row| chars(&row[i]))
                    .chain([chars(&column.header)])
                    .max()
                    .unwrap_or(0),
            })
            .collect()
    }

    fn line(&self, cells: &[impl AsRef<str>], widths: &[usize]) -> String {
        let last = self.columns.len().saturating_sub(1);
        let mut out = String::new();
        for (i, (column, cell)) in self.columns.iter().zip(cells).enumerate() {
            let (cell, width) = (cell.as_ref(), widths[i]);
            if i > 0 {
                out.push_str(self.gap);
            }
            // Writing to a String cannot fail.
            let _ = match column.align {
                Align::Left if i == last => write!(out, "{cell}"),
                Align::Left => write!(out, "{cell:width$}"),
                Align::Right => write!(out, "{cell:>width$}"),
            };
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_columns_pad_each_line_on_its_own_and_leave_the_last_unpadded() {
        let mut table = Table::new(" ")
            .column("NAME", Align::Left, Width::AtLeast(6))
            .column("CPU", Align::Right, Width::AtLeast(5))
            .column("REASON", Align::Left, Width::AtLeast(0));
        table.row(vec!["a".into(), "1.0%".into(), "idle".into()]);
        table.row(vec!["a-long-name".into(), "-".into(), "x".into()]);
        assert_eq!(
            table.lines(),
            [
                format!("{:6} {:>5} REASON", "NAME", "CPU"),
                format!("{:6} {:>4.1}% {}", "a", 1.0, "idle"),
                format!("{:6} {:>5} {}", "a-long-name", "-", "x"),
            ]
        );
    }

    #[test]
    fn fitted_columns_take_the_widest_cell_counted_in_characters() {
        let mut table = Table::new("  ")
            .column("KEY", Align::Left, Width::Fit)
            .column("N", Align::Right, Width::Fit);
        table.row(vec!["~/é".into(), "12345".into()]);
        table.row(vec!["TOTAL".into(), "1".into()]);
        assert_eq!(
            table.lines(),
            ["KEY        N", "~/é    12345", "TOTAL      1"]
        );
    }
}
