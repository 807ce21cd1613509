//! Which tables a function's body reads or writes, from PostgreSQL's own
//! grammar (libpg_query): SQL bodies are parsed as they are, PL/pgSQL bodies
//! through the PL/pgSQL parser, whose every embedded query is parsed in turn.
//! A body in another language (C, plv8…) or one the grammar rejects is
//! unknown: `None`, never an empty set.

use std::collections::BTreeSet;

use serde_json::Value as Json;

use crate::quote::QualifiedName;

/// The relations named in `body`, as written: (schema or "", name).
pub fn relations(language: &str, body: &str) -> Option<BTreeSet<(String, String)>> {
    match language {
        "sql" => relations_of_sql(body),
        "plpgsql" => {
            let mut out = BTreeSet::new();
            for query in plpgsql_queries(body)? {
                // Assignments (`x := …`) and bare expressions parse in their own modes.
                let found = relations_of_sql(&query)
                    .or_else(|| {
                        // `x :=`, `rec.field :=` (NEW.title), `schema.rec.field :=`.
                        parsed(&query, pg_query::ParserOptions::PLPGSQL_ASSIGN1)
                            .or_else(|| parsed(&query, pg_query::ParserOptions::PLPGSQL_ASSIGN2))
                            .or_else(|| parsed(&query, pg_query::ParserOptions::PLPGSQL_ASSIGN3))
                            .or_else(|| parsed(&query, pg_query::ParserOptions::PLPGSQL_EXPR))
                    })
                    .unwrap_or_default();
                out.extend(found);
            }
            Some(out)
        }
        _ => None,
    }
}

/// The SQL text of every statement and expression in a PL/pgSQL body, as
/// the PL/pgSQL parser splits it (`x := …` assignments, bare expressions and
/// whole statements); `None` when that grammar rejects the body.
pub fn plpgsql_queries(body: &str) -> Option<Vec<String>> {
    // The PL/pgSQL parser takes a whole CREATE FUNCTION; the text is
    // only parsed here, never sent to the server.
    // The result type decides which RETURN forms compile: try each.
    // (`RETURNS trigger` would fit trigger bodies, but libpg_query's
    // JSON for its NEW/OLD records does not parse; `record` accepts
    // `RETURN NEW` as well.)
    let tree = plpgsql_tree(body)?;
    let mut queries = Vec::new();
    collect_queries(&tree, &mut queries);
    Some(queries)
}

/// Whether a body runs SQL built at run time (PL/pgSQL `EXECUTE`, `FOR … IN
/// EXECUTE`, `RETURN QUERY EXECUTE`), whose tables no parse can name.
pub fn runs_dynamic_sql(language: &str, body: &str) -> bool {
    fn any_key(json: &Json, wanted: &[&str]) -> bool {
        match json {
            Json::Object(map) => map
                .iter()
                .any(|(k, v)| wanted.contains(&k.as_str()) || any_key(v, wanted)),
            Json::Array(items) => items.iter().any(|v| any_key(v, wanted)),
            _ => false,
        }
    }
    language == "plpgsql"
        && plpgsql_tree(body).is_some_and(|tree| {
            any_key(
                &tree,
                &[
                    "PLpgSQL_stmt_dynexecute",
                    "PLpgSQL_stmt_dynfors",
                    "dynquery",
                ],
            )
        })
}

/// The PL/pgSQL parser's tree of a body, as JSON.
fn plpgsql_tree(body: &str) -> Option<Json> {
    let tag = unused_dollar_tag(body);
    // A trigger body assigning `NEW.column :=` needs NEW declared: the last
    // form declares NEW and OLD as record parameters.
    let tree = [
        "() RETURNS record",
        "() RETURNS SETOF record",
        "() RETURNS void",
        "(new record, old record) RETURNS record",
    ]
    .iter()
    .find_map(|signature| {
        pg_query::parse_plpgsql(&format!(
            "CREATE FUNCTION rlsctl_body{signature} LANGUAGE plpgsql AS {tag}{body}{tag}"
        ))
        .ok()
    })?;
    Some(tree)
}

/// The tables among `known` that `body` names: a schema-qualified name
/// matches exactly, a bare one any table of that name in `search_path`.
pub fn tables_touched<'a>(
    language: &str,
    body: &str,
    search_path: &[String],
    known: impl Iterator<Item = &'a QualifiedName>,
) -> Option<BTreeSet<QualifiedName>> {
    let named = relations(language, body)?;
    Some(
        known
            .filter(|t| {
                named.iter().any(|(schema, name)| {
                    name == &t.name
                        && if schema.is_empty() {
                            search_path.contains(&t.schema)
                        } else {
                            schema == &t.schema
                        }
                })
            })
            .cloned()
            .collect(),
    )
}

fn relations_of_sql(sql: &str) -> Option<BTreeSet<(String, String)>> {
    parsed(sql, pg_query::ParserOptions::default())
}

fn parsed(sql: &str, options: pg_query::ParserOptions) -> Option<BTreeSet<(String, String)>> {
    let result = pg_query::parse(sql, options).ok()?;
    // Walked as JSON: `nodes()` does not descend into every statement kind
    // (a PL/pgSQL assignment's value among them).
    let json = serde_json::to_value(&result.protobuf).ok()?;
    let mut out = BTreeSet::new();
    collect_range_vars(&json, &mut out);
    Some(out)
}

fn collect_range_vars(json: &Json, out: &mut BTreeSet<(String, String)>) {
    match json {
        Json::Object(map) => {
            // A RangeVar, wrapped in a node or held directly (INSERT's target).
            if let Some(Json::String(relname)) = map.get("relname") {
                let schema = map.get("schemaname").and_then(Json::as_str);
                out.insert((schema.unwrap_or_default().to_string(), relname.clone()));
            }
            for v in map.values() {
                collect_range_vars(v, out);
            }
        }
        Json::Array(items) => {
            for v in items {
                collect_range_vars(v, out);
            }
        }
        _ => {}
    }
}

fn collect_queries(json: &Json, out: &mut Vec<String>) {
    match json {
        Json::Object(map) => {
            if let Some(Json::String(query)) = map.get("query") {
                out.push(query.clone());
            }
            for v in map.values() {
                collect_queries(v, out);
            }
        }
        Json::Array(items) => {
            for v in items {
                collect_queries(v, out);
            }
        }
        _ => {}
    }
}

fn unused_dollar_tag(body: &str) -> String {
    let mut tag = "$rlsctl$".to_string();
    while body.contains(&tag) {
        tag.insert(tag.len() - 1, '_');
    }
    tag
}

#[cfg(test)]
mod tests {
    use super::relations;

    fn names(language: &str, body: &str) -> Vec<String> {
        let mut names: Vec<String> = relations(language, body)
            .expect("parsed")
            .into_iter()
            .map(|(s, n)| if s.is_empty() { n } else { format!("{s}.{n}") })
            .collect();
        names.sort();
        names
    }

    #[test]
    fn sql_bodies_name_the_tables_they_read_and_write() {
        assert_eq!(
            names(
                "sql",
                "INSERT INTO audit.copies SELECT * FROM projects WHERE id = $1"
            ),
            vec!["audit.copies", "projects"]
        );
    }

    #[test]
    fn plpgsql_bodies_name_the_tables_of_every_embedded_query() {
        let body = "DECLARE n bigint; BEGIN
              n := (SELECT count(*) FROM public.projects);
              INSERT INTO name_log VALUES (NEW.name);
              RETURN NEW; END";
        assert_eq!(names("plpgsql", body), vec!["name_log", "public.projects"]);
    }

    #[test]
    fn other_languages_are_unknown_not_empty() {
        assert!(relations("c", "my_symbol").is_none());
        assert!(relations("sql", "this is not sql").is_none());
    }

    #[test]
    fn a_trigger_body_assigning_to_a_field_of_new_names_what_the_assignment_reads() {
        let body = "BEGIN
            NEW.title := (SELECT string_agg(p.id::text, ',') FROM projects p);
            RETURN NEW;
        END";
        let found = relations("plpgsql", body).expect("the body parses");
        assert!(
            found.contains(&(String::new(), "projects".to_string())),
            "{found:?}"
        );
    }
}
