//! The matrix for people (a table) and machines (JSON, schema_version 1).

use std::io::Write;

use comfy_table::{Cell as GridCell, Color, Table as Grid, presets::UTF8_FULL_CONDENSED};

use super::{Matrix, Probe, Verdict};

pub fn write_json(out: &mut impl Write, matrix: &Matrix) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, matrix)?;
    writeln!(out)
}

/// One row per object and role, one column per probe; then every LEAK and
/// NOT PROVEN with its detail, since a verdict alone does not say what to fix.
pub fn write_table(out: &mut impl Write, matrix: &Matrix, color: bool) -> std::io::Result<()> {
    let mut grid = Grid::new();
    grid.load_style(UTF8_FULL_CONDENSED);
    let mut header = vec!["object".to_string(), "as role".to_string()];
    header.extend(Probe::ALL.iter().map(|p| p.label().to_string()));
    grid.set_header(header);
    for object in &matrix.objects {
        let mut row = vec![GridCell::new(&object.object), GridCell::new(&object.role)];
        for probe in Probe::ALL {
            row.push(match object.cells.get(&probe) {
                None => GridCell::new("—"),
                Some(cell) => {
                    let shown = GridCell::new(cell.verdict.label());
                    match (color, cell.verdict) {
                        (false, _) => shown,
                        (true, Verdict::Proven) => shown.fg(Color::Green),
                        (true, Verdict::NotProven) => shown.fg(Color::Yellow),
                        (true, Verdict::Leak) => shown.fg(Color::Red),
                    }
                }
            });
        }
        grid.add_row(row);
    }
    writeln!(out, "{grid}")?;
    for object in &matrix.objects {
        for (probe, cell) in &object.cells {
            if cell.verdict == Verdict::Proven {
                continue;
            }
            write!(
                out,
                "{} {} as {} [{}]: {}",
                cell.verdict.label(),
                object.object,
                object.role,
                probe.label(),
                cell.detail
            )?;
            match &cell.key {
                Some(key) => writeln!(out, " (key {key})")?,
                None => writeln!(out)?,
            }
        }
    }
    let s = &matrix.summary;
    writeln!(
        out,
        "verify: {} proven, {} leak(s), {} not proven (probe tenants A={} B={}; everything was rolled back)",
        s.proven, s.leaks, s.not_proven, matrix.tenant_a, matrix.tenant_b
    )
}
