//! The matrix for people (one line per object, 80 columns) and machines
//! (JSON, schema_version 2).

use std::collections::BTreeMap;
use std::io::Write;

use super::{Matrix, ObjectResult, Probe, Verdict};

pub fn write_json(out: &mut impl Write, matrix: &Matrix) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, matrix)?;
    writeln!(out)
}

/// The width the matrix fits in: a classic terminal.
const WIDTH: usize = 80;

/// One line per object, grouped by role, one short column per probe, so the
/// matrix fits an 80-column terminal; then every LEAK and NOT PROVEN with its
/// detail, since a verdict alone does not say what to fix.
pub fn write_table(out: &mut impl Write, matrix: &Matrix, color: bool) -> std::io::Result<()> {
    let probes: Vec<Probe> = Probe::ALL
        .into_iter()
        .filter(|p| matrix.objects.iter().any(|o| o.cells.contains_key(p)))
        .collect();
    let name_width = WIDTH - 2 - 3 * probes.len();
    let mut roles: Vec<(&str, Option<&str>)> = Vec::new();
    for object in &matrix.objects {
        let acting = (object.role.as_str(), object.via.as_deref());
        if !roles.contains(&acting) {
            roles.push(acting);
        }
    }
    for (role, via) in roles {
        let title = fit(&format!("as {}", acting_as(role, via)), name_width);
        let mut line = format!("{title:<name_width$}  ");
        for probe in &probes {
            line.push_str(&format!("{:<3}", probe.short()));
        }
        writeln!(out, "{}", line.trim_end())?;
        for object in matrix
            .objects
            .iter()
            .filter(|o| o.role == role && o.via.as_deref() == via)
        {
            let name = match object.kind.label() {
                Some(kind) => format!("{} ({kind})", object.object),
                None => object.object.clone(),
            };
            let mut line = format!(
                "  {:<width$}  ",
                fit(&name, name_width - 2),
                width = name_width - 2
            );
            for probe in &probes {
                let mark = match object.cells.get(probe) {
                    None => "·".to_string(),
                    Some(cell) => paint(cell.verdict, color),
                };
                line.push_str(&mark);
                line.push_str("  ");
            }
            writeln!(out, "{}", line.trim_end())?;
        }
    }
    let legend: Vec<String> = probes
        .iter()
        .map(|p| format!("{}={}", p.short(), p.label()))
        .collect();
    write_wrapped(out, &legend.join(" "), "")?;
    writeln!(
        out,
        "{} proven  {} LEAK  {} not proven  {} accepted  · not probed",
        paint(Verdict::Proven, color),
        paint(Verdict::Leak, color),
        paint(Verdict::NotProven, color),
        paint(Verdict::Accepted, color)
    )?;
    let mut first = true;
    for object in &matrix.objects {
        for (probe, cell) in &object.cells {
            if cell.verdict == Verdict::Proven {
                continue;
            }
            if first {
                writeln!(out)?;
                first = false;
            }
            let key = match &cell.key {
                Some(key) => format!(" (key {key})"),
                None => String::new(),
            };
            write_wrapped(
                out,
                &format!(
                    "{} {} as {} [{}]: {}{key}",
                    cell.verdict.label(),
                    object.object,
                    acting_as(&object.role, object.via.as_deref()),
                    probe.label(),
                    cell.detail
                ),
                "    ",
            )?;
        }
    }
    let s = &matrix.summary;
    writeln!(out)?;
    write_wrapped(
        out,
        &format!(
            "verify: {} proven, {} leak(s), {} not proven, {} accepted (probe tenants A={} B={}; everything was rolled back)",
            s.proven, s.leaks, s.not_proven, s.accepted, matrix.tenant_a, matrix.tenant_b
        ),
        "    ",
    )
}

/// The role a row was probed as, and how the application reaches it.
fn acting_as(role: &str, via: Option<&str>) -> String {
    match via {
        Some(runtime) => format!("{role} (SET ROLE by {runtime})"),
        None => role.to_string(),
    }
}

/// The one-character mark of a verdict, coloured on a terminal.
fn paint(verdict: Verdict, color: bool) -> String {
    let (mark, code) = match verdict {
        Verdict::Proven => ("✓", "32"),
        Verdict::Leak => ("✗", "31"),
        Verdict::Accepted => ("~", "36"),
        Verdict::NotProven => ("?", "33"),
    };
    if color {
        format!("\x1b[{code}m{mark}\x1b[0m")
    } else {
        mark.to_string()
    }
}

/// `text` cut to `width` characters, an ellipsis marking the cut.
fn fit(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let kept: String = text.chars().take(width.saturating_sub(1)).collect();
    format!("{kept}…")
}

/// `text` wrapped at word boundaries to [`WIDTH`], continuation lines
/// starting with `indent`; a word longer than a line stays whole.
fn write_wrapped(out: &mut impl Write, text: &str, indent: &str) -> std::io::Result<()> {
    let mut line = String::new();
    let mut has_word = false;
    for word in text.split(' ') {
        if has_word && line.chars().count() + 1 + word.chars().count() > WIDTH {
            writeln!(out, "{line}")?;
            line = indent.to_string();
            has_word = false;
        }
        if has_word {
            line.push(' ');
        }
        line.push_str(word);
        has_word = true;
    }
    writeln!(out, "{line}")
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::verify::{Cell, ObjectKind, ObjectResult, Summary};

    fn object(role: &str, name: &str, kind: ObjectKind, cells: &[(Probe, Cell)]) -> ObjectResult {
        ObjectResult {
            role: role.into(),
            via: None,
            object: name.into(),
            kind,
            cells: cells.iter().cloned().collect::<BTreeMap<_, _>>(),
        }
    }

    fn sample() -> Matrix {
        let every = |cell: Cell| -> Vec<(Probe, Cell)> {
            Probe::ALL.iter().map(|p| (*p, cell.clone())).collect()
        };
        let mut leaking = every(Cell::proven("held"));
        leaking[2] = (
            Probe::Delete,
            Cell::leak(
                "DELETE with no WHERE changed tenant B's row, which is a long sentence that must wrap onto a second line",
                serde_json::json!({"id": 7}),
            ),
        );
        let mut matrix = Matrix {
            schema_version: 2,
            database: "app".into(),
            tenant_a: "a".into(),
            tenant_b: "b".into(),
            objects: vec![
                object("app_user", "public.projects", ObjectKind::Table, &leaking),
                object(
                    "app_user",
                    "a_schema_with_a_long_name.a_table_whose_name_is_longer_than_any_column",
                    ObjectKind::Table,
                    &every(Cell::proven("held")),
                ),
                object(
                    "app_user",
                    "public.project_names",
                    ObjectKind::View,
                    &[(Probe::Read, Cell::not_proven("the view shows nothing"))],
                ),
                object(
                    "app_user",
                    "public.events_old",
                    ObjectKind::InheritanceChild,
                    &[(Probe::Read, Cell::proven("held"))],
                ),
                object(
                    "reporting",
                    "public.projects",
                    ObjectKind::Table,
                    &[(Probe::Read, Cell::proven("held"))],
                ),
            ],
            summary: Summary::default(),
            tables: Vec::new(),
        };
        matrix.count();
        matrix
    }

    fn rendered(matrix: &Matrix) -> String {
        let mut out = Vec::new();
        write_table(&mut out, matrix, false).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn the_text_matrix_fits_80_columns_with_one_line_per_object() {
        let text = rendered(&sample());
        for line in text.lines() {
            assert!(
                line.chars().count() <= WIDTH,
                "{} chars: {line}",
                line.chars().count()
            );
        }
        let projects: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("  public.projects "))
            .collect();
        assert_eq!(projects.len(), 2, "once per role:\n{text}");
        assert!(projects[0].contains('✗'), "{text}");
        assert!(text.contains("as reporting"), "{text}");
        let long = text
            .lines()
            .find(|l| l.starts_with("  a_schema_with_a_long_name."))
            .unwrap();
        assert!(
            long.contains('…'),
            "a name too long is cut, not wrapped:\n{text}"
        );
    }

    #[test]
    fn every_cell_not_proven_is_detailed_once_under_the_matrix() {
        let text = rendered(&sample());
        let leak = "LEAK public.projects as app_user [delete]:";
        assert_eq!(text.matches(leak).count(), 1, "{text}");
        assert!(text.contains("{\"id\":7})"), "{text}");
        assert_eq!(
            text.matches(
                "NOT PROVEN public.project_names as app_user [read]: the view shows nothing"
            )
            .count(),
            1,
            "{text}"
        );
        assert!(
            !text.contains("[update]"),
            "PROVEN cells are not detailed:\n{text}"
        );
    }

    #[test]
    fn inheritance_children_are_labelled_as_such_not_as_partitions() {
        let text = rendered(&sample());
        assert!(
            text.contains("public.events_old (inheritance child)"),
            "{text}"
        );
        assert!(!text.contains("partition"), "{text}");
    }

    #[test]
    fn colour_marks_only_the_verdicts() {
        let mut out = Vec::new();
        write_table(&mut out, &sample(), true).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("\x1b[31m✗\x1b[0m"), "{text}");
        assert!(text.contains("\x1b[32m✓\x1b[0m"), "{text}");
    }
}
