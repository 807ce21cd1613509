//! What PostgreSQL's grammar says a piece of SQL reads.

use pg_query::NodeRef;

use crate::quote::ident;

/// The relations named in `nodes` (a pg_query tree walked with `nodes()`),
/// each as `to_regclass` takes it: quoted, schema-qualified where written
/// so; sorted, without repeats.
pub fn relations<'a>(nodes: impl IntoIterator<Item = NodeRef<'a>>) -> Vec<String> {
    let mut out: Vec<String> = nodes
        .into_iter()
        .filter_map(|node| match node {
            NodeRef::RangeVar(v) if v.schemaname.is_empty() => Some(ident(&v.relname)),
            NodeRef::RangeVar(v) => Some(format!("{}.{}", ident(&v.schemaname), ident(&v.relname))),
            _ => None,
        })
        .collect();
    out.sort();
    out.dedup();
    out
}
