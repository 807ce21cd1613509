//! Declared: a table the spec makes append-only (`commands: [select, insert]`)
//! refuses UPDATE and DELETE even on the tenant's own rows, and a read-only
//! cross-tenant role reads every tenant and writes nothing.

use super::{verdict_as, verify};
use crate::harness::TestDb;

#[tokio::test]
async fn an_append_only_table_and_a_read_only_cross_tenant_role_allow_exactly_what_they_declare() {
    let (db, role, reader) = TestDb::applied_with_reader().await;
    let (code, matrix) = verify(&db, &["--strict"]);
    assert_eq!(code, 0, "{matrix:#}");
    // The JSON shape: version 2 added the null-tenant, existence and declared
    // cells, rows of cross-tenant roles and the inheritance_child kind.
    assert_eq!(matrix["schema_version"], 2);
    for object in matrix["objects"].as_array().unwrap() {
        for key in ["role", "object", "kind", "cells"] {
            assert!(object.get(key).is_some(), "{key} missing in {object}");
        }
    }
    assert_eq!(
        verdict_as(&matrix, &role, "public.tasks", "declared"),
        "PROVEN"
    );
    for probe in ["read", "update", "delete", "insert"] {
        for table in ["public.projects", "public.tasks"] {
            assert_eq!(
                verdict_as(&matrix, &reader, table, probe),
                "PROVEN",
                "{probe} {table}"
            );
        }
    }
}

#[tokio::test]
async fn updates_and_deletes_the_spec_withholds_are_a_leak_when_the_database_allows_them() {
    let (db, role, _) = TestDb::applied_with_reader().await;
    db.execute(&format!(
        "GRANT UPDATE, DELETE ON tasks TO {role};
         CREATE POLICY tasks_edit ON tasks FOR UPDATE TO {role}
           USING (tenant_id = (SELECT rls.current_tenant_id()));
         CREATE POLICY tasks_remove ON tasks FOR DELETE TO {role}
           USING (tenant_id = (SELECT rls.current_tenant_id()));"
    ))
    .await;
    let (code, matrix) = verify(&db, &[]);
    assert_eq!(code, 2, "{matrix:#}");
    assert_eq!(
        verdict_as(&matrix, &role, "public.tasks", "declared"),
        "LEAK"
    );
    // Other tenants stay out of reach: only the declared shape is broken.
    assert_eq!(
        verdict_as(&matrix, &role, "public.tasks", "update"),
        "PROVEN"
    );
}

#[tokio::test]
async fn a_read_only_cross_tenant_role_that_can_delete_is_a_leak() {
    let (db, _, reader) = TestDb::applied_with_reader().await;
    db.execute(&format!(
        "GRANT DELETE ON projects TO {reader};
         CREATE POLICY reader_cleanup ON projects FOR DELETE TO {reader} USING (true);"
    ))
    .await;
    let (code, matrix) = verify(&db, &[]);
    assert_eq!(code, 2, "{matrix:#}");
    assert_eq!(
        verdict_as(&matrix, &reader, "public.projects", "delete"),
        "LEAK"
    );
    assert_eq!(
        verdict_as(&matrix, &reader, "public.projects", "read"),
        "PROVEN"
    );
    assert_eq!(
        verdict_as(&matrix, &reader, "public.projects", "update"),
        "PROVEN"
    );
}
