//! The matrix for people (a table) and machines (JSON, schema_version 1).

use std::collections::BTreeMap;
use std::io::Write;

use comfy_table::{Cell as GridCell, Color, Table as Grid, presets::UTF8_FULL_CONDENSED};

use super::{Matrix, ObjectResult, Probe, Verdict};

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

/// One line when more than half the cells are NOT PROVEN: a run that exits 0
/// having proved little must not pass for a proof. Names the commonest reason
/// (the detail most cells share) with one cell that gave it.
pub fn write_warning(out: &mut impl Write, matrix: &Matrix) -> std::io::Result<()> {
    let s = &matrix.summary;
    let total = s.proven + s.leaks + s.not_proven;
    if s.not_proven * 2 <= total {
        return Ok(());
    }
    let mut reasons: BTreeMap<&str, (usize, &ObjectResult, Probe)> = BTreeMap::new();
    for object in &matrix.objects {
        for (probe, cell) in &object.cells {
            if cell.verdict == Verdict::NotProven {
                reasons
                    .entry(cell.detail.as_str())
                    .or_insert((0, object, *probe))
                    .0 += 1;
            }
        }
    }
    let mut commonest: Option<(&str, &(usize, &ObjectResult, Probe))> = None;
    for (reason, seen) in &reasons {
        if commonest.is_none_or(|(_, best)| seen.0 > best.0) {
            commonest = Some((reason, seen));
        }
    }
    write!(
        out,
        "warning: verify proved little: {} of {total} cells are NOT PROVEN ({} PROVEN, {} LEAK)",
        s.not_proven, s.proven, s.leaks
    )?;
    match commonest {
        Some((reason, (count, object, probe))) => writeln!(
            out,
            "; commonest reason ({count} cell(s), e.g. {} as {} [{}]): {reason}",
            object.object,
            object.role,
            probe.label()
        ),
        None => writeln!(out),
    }
}
