//! `rlsctl report`: one evidence bundle for a review period — who the server
//! is, which spec it was held to, a fingerprint of the catalog, the audit
//! (with accepted exceptions and their reasons), the verify matrix, and the
//! apply history with the state of its hash chain. JSON for tools, Markdown
//! and HTML for people; all three come from the same `Bundle`.

pub mod document;
pub mod fingerprint;
pub mod html;
pub mod markdown;
mod period;
mod server;
mod spec_source;

use std::path::Path;

use serde::Serialize;
use sqlx::PgConnection;

use crate::audit::report::Report;
use crate::history::{ChainStatus, Entry};
use crate::spec::Spec;
use crate::verify::{Matrix, Verdict};
use document::Document;
pub use period::Period;
use server::Server;
use spec_source::SpecSource;

/// Bumped on any incompatible change of `report.json`.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Serialize)]
pub struct Bundle {
    pub schema_version: u32,
    pub generated_at: String,
    pub period: Period,
    pub server: Server,
    pub spec: SpecSource,
    pub catalog_fingerprint: fingerprint::Fingerprint,
    pub audit: Report,
    /// Absent when the report was made with --no-verify.
    pub verify: Option<Matrix>,
    pub history: History,
    pub verdict: Outcome,
}

#[derive(Debug, Serialize)]
pub struct History {
    /// The applies inside the period, oldest first.
    pub entries: Vec<Entry>,
    /// The whole table's chain, not only the period's rows.
    pub chain: ChainStatus,
}

/// What a reader looks at first.
#[derive(Debug, Serialize)]
pub struct Outcome {
    pub passed: bool,
    pub reasons: Vec<String>,
}

/// Everything the report needs, read over the admin connection. Read-only:
/// verify's probes run in transactions it rolls back.
pub async fn collect(
    conn: &mut PgConnection,
    spec: &Spec,
    config_dir: &Path,
    period: Period,
    verify: Option<Matrix>,
    audit: Report,
) -> anyhow::Result<Bundle> {
    let server = server::read(conn).await?;
    let roles: Vec<String> = spec.roles.iter().map(|r| r.name.clone()).collect();
    let catalog_fingerprint = fingerprint::read(conn, &roles).await?;
    let all = crate::history::read(conn).await?;
    let chain = crate::history::check_chain(&all);
    let entries = all
        .into_iter()
        .filter(|e| period.contains(&e.applied_at))
        .collect();
    let verdict = verdict(&audit, verify.as_ref(), &chain);
    Ok(Bundle {
        schema_version: SCHEMA_VERSION,
        generated_at: time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        period,
        server,
        spec: spec_source::read(spec, config_dir),
        catalog_fingerprint,
        audit,
        verify,
        history: History { entries, chain },
        verdict,
    })
}

fn verdict(audit: &Report, verify: Option<&Matrix>, chain: &ChainStatus) -> Outcome {
    let mut reasons = Vec::new();
    let errors = audit.failing(crate::audit::Severity::Error);
    if errors > 0 {
        reasons.push(format!("audit: {errors} open error finding(s)"));
    }
    if audit.examined_nothing() {
        reasons.push("audit: no tenant table was examined".to_string());
    }
    if let Some(matrix) = verify
        && matrix.summary.leaks > 0
    {
        reasons.push(format!("verify: {} LEAK cell(s)", matrix.summary.leaks));
    }
    if let Some(broken) = &chain.broken_at {
        reasons.push(format!(
            "apply history: hash chain broken at row {}",
            broken.id
        ));
    }
    Outcome {
        passed: reasons.is_empty(),
        reasons,
    }
}

impl Bundle {
    /// The human-readable report, shared by Markdown and HTML.
    pub fn document(&self) -> Document {
        let mut doc = Document::new(format!(
            "Tenant isolation evidence: {}",
            self.server.database
        ));
        if self.verdict.passed {
            doc.paragraph(
                "Verdict: PASSED — no open audit error, no verify leak, apply history intact.",
            );
        } else {
            doc.alert(format!(
                "Verdict: FAILED — {}",
                self.verdict.reasons.join("; ")
            ));
        }
        doc.heading("Scope");
        doc.facts(vec![
            ("Generated", self.generated_at.clone()),
            ("Review period", self.period.to_string()),
            ("Database", self.server.database.clone()),
            ("Server", self.server.describe()),
            ("Examined as", self.server.connected_as.clone()),
            ("Spec content hash (sha256)", self.spec.hash.clone()),
            ("Spec files", self.spec.files.join(", ")),
            ("Spec git commit", self.spec.git_commit_label()),
            (
                "Catalog fingerprint (sha256)",
                format!(
                    "{} over {} entries",
                    self.catalog_fingerprint.sha256, self.catalog_fingerprint.entries
                ),
            ),
            ("Runtime roles", self.audit.runtime_roles.join(", ")),
            (
                "Tenant tables examined",
                self.audit.summary.tenant_tables.to_string(),
            ),
        ]);
        self.audit_blocks(&mut doc);
        self.verify_blocks(&mut doc);
        self.history_blocks(&mut doc);
        doc
    }

    fn audit_blocks(&self, doc: &mut Document) {
        let s = &self.audit.summary;
        doc.heading("Audit findings");
        doc.paragraph(format!(
            "{} error(s), {} warning(s), {} info, {} accepted exception(s).",
            s.errors, s.warnings, s.infos, s.accepted
        ));
        let open: Vec<Vec<String>> = self
            .audit
            .findings
            .iter()
            .filter(|f| f.accepted.is_none())
            .map(|f| {
                vec![
                    f.severity.label().to_string(),
                    f.id.to_string(),
                    f.object.clone(),
                    f.found.clone(),
                    f.fix.clone(),
                ]
            })
            .collect();
        doc.table(
            &["severity", "id", "object", "found", "fix"],
            open,
            "No open findings.",
        );
        doc.heading("Accepted exceptions");
        let accepted: Vec<Vec<String>> = self
            .audit
            .findings
            .iter()
            .filter_map(|f| {
                f.accepted.as_ref().map(|reason| {
                    vec![
                        f.id.to_string(),
                        f.object.clone(),
                        f.found.clone(),
                        reason.clone(),
                    ]
                })
            })
            .collect();
        doc.table(
            &["id", "object", "found", "reason"],
            accepted,
            "No exceptions are declared.",
        );
        doc.heading("Tenant tables");
        let tables = self
            .audit
            .tables
            .iter()
            .map(|t| {
                vec![
                    t.table.clone(),
                    yes_no(t.rls_enabled),
                    yes_no(t.rls_forced),
                    t.policies.join(", "),
                    t.tenant_index.clone().unwrap_or_else(|| "missing".into()),
                    t.owner.clone(),
                ]
            })
            .collect();
        doc.table(
            &["table", "RLS", "FORCE", "policies", "tenant index", "owner"],
            tables,
            "No tenant tables.",
        );
        doc.heading("Roles");
        let roles = self
            .audit
            .roles
            .iter()
            .map(|r| {
                vec![
                    r.role.clone(),
                    yes_no(r.login),
                    yes_no(r.superuser),
                    yes_no(r.bypass_rls),
                    r.member_of.join(", "),
                ]
            })
            .collect();
        doc.table(
            &["role", "LOGIN", "SUPERUSER", "BYPASSRLS", "member of"],
            roles,
            "No roles.",
        );
    }

    fn verify_blocks(&self, doc: &mut Document) {
        doc.heading("Verify: isolation proven by acting as the runtime role");
        let Some(matrix) = &self.verify else {
            doc.paragraph("Not run (--no-verify).");
            return;
        };
        let v = &matrix.summary;
        doc.paragraph(format!(
            "{} cell(s) PROVEN, {} LEAK, {} NOT PROVEN. Tenants A = {}, B = {} were made up and rolled back.",
            v.proven, v.leaks, v.not_proven, matrix.tenant_a, matrix.tenant_b
        ));
        let rows = matrix
            .objects
            .iter()
            .map(|o| {
                let count = |verdict| o.cells.values().filter(|c| c.verdict == verdict).count();
                let details: Vec<String> = o
                    .cells
                    .iter()
                    .filter(|(_, c)| c.verdict != Verdict::Proven)
                    .map(|(probe, c)| {
                        format!("{} {}: {}", probe.label(), c.verdict.label(), c.detail)
                    })
                    .collect();
                vec![
                    o.object.clone(),
                    o.role.clone(),
                    count(Verdict::Proven).to_string(),
                    count(Verdict::Leak).to_string(),
                    count(Verdict::NotProven).to_string(),
                    details.join("; "),
                ]
            })
            .collect();
        doc.table(
            &["object", "role", "proven", "leak", "not proven", "details"],
            rows,
            "No object was probed.",
        );
    }

    fn history_blocks(&self, doc: &mut Document) {
        let chain = &self.history.chain;
        doc.heading("Apply history");
        match &chain.broken_at {
            Some(broken) => doc.alert(format!(
                "The hash chain of rlsctl.apply_history is BROKEN at row {}: {}. The history below cannot be trusted as recorded.",
                broken.id, broken.reason
            )),
            None => doc.paragraph(format!(
                "The hash chain of rlsctl.apply_history is intact over {} row(s){}. Head hash: {} — compare it with the previous report's to detect a rebuilt or truncated history.",
                chain.rows,
                if chain.unchained_rows > 0 {
                    format!(" ({} older row(s) predate the chain)", chain.unchained_rows)
                } else {
                    String::new()
                },
                chain.head_hash.as_deref().unwrap_or("(none)")
            )),
        }
        let rows = self
            .history
            .entries
            .iter()
            .map(|e| {
                vec![
                    e.id.to_string(),
                    e.applied_at.clone(),
                    e.applied_by.clone(),
                    e.spec_hash.chars().take(12).collect(),
                    e.migrations.join(", "),
                    e.statements.len().to_string(),
                    e.flags.join(" "),
                ]
            })
            .collect();
        doc.table(
            &[
                "row",
                "applied at (UTC)",
                "by",
                "spec hash",
                "migrations",
                "statements",
                "flags",
            ],
            rows,
            "No apply in this period changed the database.",
        );
    }
}

fn yes_no(value: bool) -> String {
    if value { "yes" } else { "no" }.to_string()
}
