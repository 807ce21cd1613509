//! Extra policies: each policy the spec declares beside the tenant policy
//! (`policies:`) has the effect it declares, shown by behaviour as the role it
//! applies to. Two probe rows are planted for it, one whose values fail the
//! declared expression and, where one can be made, one whose values satisfy
//! it; the server itself confirms which is which by evaluating the spec's
//! expression on them, so a row rlsctl made up wrongly proves nothing rather
//! than something false.
//!
//! Whose rows: a restrictive policy narrows what a tenant may do with its own
//! rows, so its rows are tenant A's (the bound tenant); a permissive one adds
//! access, so its rows are tenant B's (another tenant) — it must admit no row
//! of B that its expression does not. Then, with A bound:
//! - USING, for SELECT: the failing row is not visible (LEAK if it is); the
//!   satisfying one is (else NOT PROVEN: the declared effect is not shown);
//! - USING, for UPDATE and DELETE: the failing row is left untouched;
//! - WITH CHECK (or USING where it serves as the check), for INSERT: a new row
//!   failing it is refused; for UPDATE: rewriting the satisfying row into the
//!   failing values is refused.
//!
//! The values come from the expression's comparisons with constants, IN
//! lists, IS [NOT] NULL and boolean columns (what CHECK constraints are read
//! with, see `values::check_constraints`); an expression with nothing of that
//! kind is NOT PROVEN, with the reason.

use serde_json::{Map, Value};
use sqlx::PgConnection;

use super::attempt::{Attempt, Stop, exec};
use super::{LOCATED_AT_1, LOCATED_AT_2, Probing, location};
use crate::quote::{QualifiedName, Sql};
use crate::spec::{Command, Expression, PolicyKind, PolicySpec};
use crate::verify::rows::{ProbeRow, Unbuildable, insert_statement};
use crate::verify::values::check_constraints::{Formula, Test};
use crate::verify::values::column_types;
use crate::verify::{Cell, Tenant, Verdict, VerifyError};

/// Alternatives of an OR tried for values before giving up.
const ALTERNATIVES: usize = 16;

impl Probing<'_> {
    /// Every extra policy of `table` that applies to the role probed
    /// (`runtime`: a runtime role itself); `None` when there is none. A
    /// cross-tenant role reads every tenant already, so only the restrictive
    /// policies that narrow it can be shown.
    pub(super) async fn extra_policies(
        &mut self,
        conn: &mut PgConnection,
        table: &QualifiedName,
        tenant_column: &str,
        runtime: bool,
        planted: &[&ProbeRow],
    ) -> Result<Option<Cell>, VerifyError> {
        let cross_tenant = !runtime && self.via.is_none();
        let policies: Vec<&PolicySpec> = self
            .policies
            .iter()
            .filter(|p| p.tables.contains(table) && self.applies(p, runtime))
            .filter(|p| !cross_tenant || p.kind == PolicyKind::Restrictive)
            .collect();
        if policies.is_empty() {
            return Ok(None);
        }
        let mut cells = Vec::new();
        for policy in policies {
            cells.push(
                self.extra_policy(conn, table, tenant_column, policy, planted)
                    .await?,
            );
        }
        Ok(Some(Cell::combine(cells)))
    }

    /// A policy applies to the role it names; one naming no role applies to
    /// the runtime roles.
    fn applies(&self, policy: &PolicySpec, runtime: bool) -> bool {
        if policy.roles.is_empty() {
            runtime
        } else {
            policy.roles.iter().any(|r| r == self.role)
        }
    }

    async fn extra_policy(
        &mut self,
        conn: &mut PgConnection,
        table: &QualifiedName,
        tenant_column: &str,
        policy: &PolicySpec,
        planted: &[&ProbeRow],
    ) -> Result<Cell, VerifyError> {
        let holder = match policy.kind {
            PolicyKind::Restrictive => self.a,
            PolicyKind::Permissive => self.b,
        };
        let commands: &[Command] = match policy.command {
            Command::All => &[
                Command::Select,
                Command::Insert,
                Command::Update,
                Command::Delete,
            ],
            Command::Select => &[Command::Select],
            Command::Insert => &[Command::Insert],
            Command::Update => &[Command::Update],
            Command::Delete => &[Command::Delete],
        };
        let check = policy.with_check.as_ref().or(match policy.command {
            Command::All | Command::Update => policy.using.as_ref(),
            _ => None,
        });
        let mut cells = Vec::new();
        for command in commands {
            let expression = match command {
                Command::Insert => check,
                _ => policy.using.as_ref(),
            };
            let Some(expression) = expression else {
                continue;
            };
            let context = Context {
                policy,
                holder,
                expression,
                command: *command,
            };
            let mark = self.open(conn).await?;
            // The policy's rows share the probe rows' parents, so a unique
            // key through them (one row per lesson and student) would refuse
            // them: the probe rows make way until the savepoint is rolled back.
            self.make_way(conn, planted).await?;
            let rows = self
                .rows_for(conn, table, tenant_column, holder, expression)
                .await?;
            let cell = match (&rows.failing, &rows.satisfying) {
                (None, None) => Cell::not_proven(format!(
                    "{}: {}",
                    context.describe(),
                    rows.unshown.join("; ")
                )),
                _ => {
                    let mut shown = match command {
                        Command::Select => vec![self.hides(conn, &context, &rows).await?],
                        Command::Insert => {
                            let mut shown = Vec::new();
                            if let Some(failing) = &rows.failing {
                                shown.push(self.refuses_new(conn, table, &context, failing).await?);
                            }
                            if let Some(satisfying) = &rows.satisfying {
                                shown.extend(self.admits(conn, table, &context, satisfying).await?);
                            }
                            shown
                        }
                        _ => {
                            let mut shown = Vec::new();
                            if let Some(failing) = &rows.failing {
                                shown.push(
                                    self.leaves_untouched(conn, table, &context, failing)
                                        .await?,
                                );
                            }
                            if let Some(satisfying) = &rows.satisfying {
                                shown.extend(self.admits(conn, table, &context, satisfying).await?);
                            }
                            if *command == Command::Update
                                && let Some(check) = check
                                && let Some(satisfying) = &rows.satisfying
                            {
                                shown.push(
                                    self.refuses_rewrite(
                                        conn,
                                        table,
                                        tenant_column,
                                        &Context {
                                            expression: check,
                                            ..context
                                        },
                                        satisfying,
                                    )
                                    .await?,
                                );
                            }
                            shown
                        }
                    };
                    if shown.is_empty() {
                        shown.push(Cell::not_proven(format!(
                            "{}: {}",
                            context.describe(),
                            rows.unshown.join("; ")
                        )));
                    }
                    let mut cell = Cell::combine(shown);
                    // What could not be shown is said beside what was.
                    if cell.verdict == Verdict::Proven && !rows.unshown.is_empty() {
                        cell.detail =
                            format!("{} (not shown: {})", cell.detail, rows.unshown.join("; "));
                    }
                    cell
                }
            };
            self.close(conn, mark).await?;
            cells.push(cell);
        }
        if cells.is_empty() {
            cells.push(Cell::not_proven(format!(
                "policy {} declares no expression for {}",
                policy.name,
                command_name(policy.command)
            )));
        }
        Ok(Cell::combine(cells))
    }

    /// Planted rows of `holder` on each side of `expression`, each confirmed
    /// by the server: made up from the expression where it can be, else a
    /// plain probe row (its `probe_values` included) falls on one side.
    async fn rows_for(
        &mut self,
        conn: &mut PgConnection,
        table: &QualifiedName,
        tenant_column: &str,
        holder: &Tenant,
        expression: &Expression,
    ) -> Result<Rows, VerifyError> {
        let mut rows = Rows::default();
        let mut evaluation_failed = None;
        for wanted in [false, true] {
            let formula = match wanted {
                false => Formula::parse(&format!("NOT ({expression})"), None),
                true => Formula::parse(expression.as_str(), None),
            };
            let Some(fixed) = self.values_meeting(table, tenant_column, &formula) else {
                continue;
            };
            let Ok(values) = self.factory.values_with(conn, table, holder, fixed).await else {
                continue;
            };
            if rows.side(wanted).is_none()
                && let Err(why) = self
                    .plant_on_its_side(conn, table, holder, expression, &values, &mut rows)
                    .await?
            {
                evaluation_failed = Some(why);
            }
        }
        if (rows.failing.is_none() || rows.satisfying.is_none())
            && let Ok(values) = self.factory.values_for(conn, table, holder).await
            && let Err(why) = self
                .plant_on_its_side(conn, table, holder, expression, &values, &mut rows)
                .await?
        {
            evaluation_failed = Some(why);
        }
        if let Some(why) =
            evaluation_failed.filter(|_| rows.failing.is_none() && rows.satisfying.is_none())
        {
            rows.unshown.push(format!(
                "`{expression}` cannot be evaluated on a probe row with tenant A bound: {why}"
            ));
            return Ok(rows);
        }
        for (side, row) in [("fails", &rows.failing), ("satisfies", &rows.satisfying)] {
            if row.is_none() {
                rows.unshown.push(format!(
                    "no row of tenant {} that {side} `{expression}` could be made up (rlsctl solves comparisons of the table's columns with constants, IN lists, IS [NOT] NULL and boolean columns; give the columns it reads `probe_values` that put a probe row on that side)",
                    holder.label
                ));
            }
        }
        Ok(rows)
    }

    /// Plants a row with `values` when the server says it falls on a side
    /// still empty, then files it by what the server says of the row as
    /// stored (a trigger or default may have changed it); the error when the
    /// expression cannot be evaluated.
    async fn plant_on_its_side(
        &mut self,
        conn: &mut PgConnection,
        table: &QualifiedName,
        holder: &Tenant,
        expression: &Expression,
        values: &Map<String, Value>,
        rows: &mut Rows,
    ) -> Result<Result<(), String>, VerifyError> {
        let before = match self.satisfies(conn, table, expression, values).await? {
            Ok(said) => said,
            Err(why) => return Ok(Err(why)),
        };
        if rows.side(before).is_some() {
            return Ok(Ok(()));
        }
        let Some(row) = self.plant(conn, table, holder, values).await? else {
            return Ok(Ok(()));
        };
        match self.satisfies(conn, table, expression, &row.values).await? {
            Ok(said) => {
                let side = rows.side(said);
                if side.is_none() {
                    *side = Some(row);
                }
                Ok(Ok(()))
            }
            Err(why) => Ok(Err(why)),
        }
    }

    /// Deletes the table's probe rows as the admin (each with its tenant
    /// bound), each in a savepoint: one that cannot go stays.
    async fn make_way(
        &mut self,
        conn: &mut PgConnection,
        planted: &[&ProbeRow],
    ) -> Result<(), VerifyError> {
        for row in planted {
            let delete = Sql::new("DELETE FROM ")
                .qname(&row.table)
                .push(" AS x")
                .push(LOCATED_AT_1);
            exec(conn, "SAVEPOINT rlsctl_make_way").await?;
            let tenant = self.tenant_of(row);
            let done = match self.binding.bind(conn, Some(tenant)).await {
                Ok(()) => {
                    let mut query = sqlx::query(delete.to_query());
                    for value in location(row) {
                        query = query.bind(value);
                    }
                    query.execute(&mut *conn).await.map(|_| ())
                }
                Err(error) => Err(error),
            };
            match done {
                Ok(()) => exec(conn, "RELEASE SAVEPOINT rlsctl_make_way").await?,
                Err(_) => {
                    exec(conn, "ROLLBACK TO SAVEPOINT rlsctl_make_way").await?;
                    exec(conn, "RELEASE SAVEPOINT rlsctl_make_way").await?;
                }
            }
        }
        Ok(())
    }

    /// Inserts a row as the admin in a savepoint of its own; `None` when the
    /// table refuses it.
    async fn plant(
        &mut self,
        conn: &mut PgConnection,
        table: &QualifiedName,
        holder: &Tenant,
        values: &Map<String, Value>,
    ) -> Result<Option<ProbeRow>, VerifyError> {
        exec(conn, "SAVEPOINT rlsctl_policy_row").await?;
        match self
            .factory
            .insert_values(conn, table, holder, values)
            .await
        {
            Ok(row) => {
                exec(conn, "RELEASE SAVEPOINT rlsctl_policy_row").await?;
                Ok(Some(row))
            }
            Err(_) => {
                exec(conn, "ROLLBACK TO SAVEPOINT rlsctl_policy_row").await?;
                exec(conn, "RELEASE SAVEPOINT rlsctl_policy_row").await?;
                Ok(None)
            }
        }
    }

    /// Values for the columns `formula` constrains, from the first of its
    /// alternatives every column of which can be given a value: `None` when
    /// no alternative names a column rlsctl may set (the tenant column is
    /// the probe's own).
    fn values_meeting(
        &mut self,
        table: &QualifiedName,
        tenant_column: &str,
        formula: &Formula,
    ) -> Option<Map<String, Value>> {
        'alternatives: for alternative in alternatives(formula) {
            let mut tests: Vec<(String, Vec<Test>)> = Vec::new();
            for leaf in alternative {
                // Other leaves are understood by the server only: it confirms the row.
                if let Formula::Atom(atom) = leaf {
                    match tests.iter_mut().find(|(c, _)| *c == atom.column) {
                        Some((_, list)) => list.push(atom.test.clone()),
                        None => tests.push((atom.column.clone(), vec![atom.test.clone()])),
                    }
                }
            }
            if tests.is_empty() {
                continue;
            }
            let mut values = Map::new();
            for (name, tests) in tests {
                let Some(column) = self.layout.column(table, &name) else {
                    continue 'alternatives;
                };
                if name == tenant_column || !column.writable() {
                    continue 'alternatives;
                }
                let ty = self.layout.rules.types.get(&(table.clone(), name.clone()));
                // What the table's CHECKs and the column's domain demand
                // besides: a value the table refuses proves nothing.
                let mut tests = tests;
                let rules = self.layout.rules;
                for (_, check) in rules.checks.get(table).into_iter().flatten() {
                    tests.extend(Formula::parse(check, None).conjunctive_tests(&name));
                }
                for check in ty.iter().flat_map(|t| &t.domain_checks) {
                    tests.extend(Formula::parse(check, Some(&name)).conjunctive_tests(&name));
                }
                self.sequence += 1;
                let Some(value) =
                    column_types::choose(column, ty, &tests, self.sequence, self.token)
                else {
                    continue 'alternatives;
                };
                values.insert(name, value);
            }
            return Some(values);
        }
        None
    }

    /// What the spec's expression says of a row with `values`, evaluated by
    /// the server with tenant A bound (as the probe runs), or why it could
    /// not be evaluated.
    async fn satisfies(
        &self,
        conn: &mut PgConnection,
        table: &QualifiedName,
        expression: &Expression,
        values: &Map<String, Value>,
    ) -> Result<Result<bool, String>, VerifyError> {
        // The row type under the table's own name, so `table.column` reads
        // as it does in the policy.
        let statement = Sql::new("SELECT to_jsonb(coalesce((")
            .expr(expression)
            .push("), false)) FROM pg_catalog.json_populate_record(NULL::")
            .qname(table)
            .push(", $1::json) AS ")
            .ident(&table.name);
        exec(conn, "SAVEPOINT rlsctl_policy_eval").await?;
        let result = self
            .admin_value(
                conn,
                self.a,
                &statement,
                &[Value::Object(values.clone()).to_string()],
            )
            .await;
        match result {
            Ok(value) => {
                exec(conn, "RELEASE SAVEPOINT rlsctl_policy_eval").await?;
                Ok(value.as_bool().ok_or_else(|| format!("it gave {value}")))
            }
            Err(error) => {
                exec(conn, "ROLLBACK TO SAVEPOINT rlsctl_policy_eval").await?;
                exec(conn, "RELEASE SAVEPOINT rlsctl_policy_eval").await?;
                Ok(Err(error.to_string()))
            }
        }
    }

    /// SELECT: the failing row is not visible, the satisfying one is.
    async fn hides(
        &mut self,
        conn: &mut PgConnection,
        context: &Context<'_>,
        rows: &Rows,
    ) -> Result<Cell, VerifyError> {
        let what = context.describe();
        let (label, expression) = (context.holder.label, context.expression);
        let mut cells = Vec::new();
        if let Some(row) = &rows.failing {
            cells.push(match self.visible(conn, row).await? {
                Ok(false) => Cell::proven(format!(
                    "{what}: tenant {label}'s row that fails `{expression}` is hidden"
                )),
                Ok(true) => Cell::leak(
                    format!(
                        "{what}: tenant {label}'s row that fails `{expression}` is visible; the live policy admits more than the spec declares"
                    ),
                    self.key(row),
                ),
                Err(Stop::Refused(why)) => Cell::proven(format!("{what}: reading refused ({why})")),
                Err(Stop::Failed(why)) => {
                    Cell::not_proven(format!("{what}: reading failed: {why}"))
                }
            });
        }
        if let Some(row) = &rows.satisfying {
            cells.push(match self.visible(conn, row).await? {
                Ok(true) => Cell::proven(format!(
                    "{what}: tenant {label}'s row that satisfies `{expression}` is visible, as declared"
                )),
                Ok(false) => Cell::not_proven(format!(
                    "{what}: tenant {label}'s row that satisfies `{expression}` is hidden, so the declared effect is not shown"
                )),
                Err(Stop::Refused(why) | Stop::Failed(why)) => Cell::not_proven(format!(
                    "{what}: reading the row that satisfies `{expression}` failed: {why}"
                )),
            });
        }
        Ok(Cell::combine(cells))
    }

    /// Whether `row` is visible as the role with tenant A bound.
    async fn visible(
        &mut self,
        conn: &mut PgConnection,
        row: &ProbeRow,
    ) -> Result<Result<bool, Stop>, VerifyError> {
        let count = Sql::new("SELECT to_jsonb(count(*)) FROM ")
            .qname(&row.table)
            .push(" AS x")
            .push(LOCATED_AT_1);
        Ok(
            match self
                .attempt(conn, Some(self.a), &count, &location(row), true)
                .await?
            {
                Attempt::Done { rows, .. } => Ok(rows.first() != Some(&Value::from(0))),
                Attempt::Stopped(stop) => Err(stop),
            },
        )
    }

    /// UPDATE or DELETE: the failing row is left as it was.
    async fn leaves_untouched(
        &mut self,
        conn: &mut PgConnection,
        table: &QualifiedName,
        context: &Context<'_>,
        failing: &ProbeRow,
    ) -> Result<Cell, VerifyError> {
        let row = failing;
        let statement = match context.command {
            Command::Update => {
                let Some(settable) = self.settable(table) else {
                    return Ok(Cell::proven(
                        "UPDATE: the table has no column an UPDATE may set",
                    ));
                };
                Sql::new("UPDATE ")
                    .qname(table)
                    .push(" AS x SET ")
                    .ident(&settable)
                    .push(" = x.")
                    .ident(&settable)
                    .push(LOCATED_AT_1)
            }
            _ => Sql::new("DELETE FROM ")
                .qname(table)
                .push(" AS x")
                .push(LOCATED_AT_1),
        };
        let form = format!(
            "{}: {} of tenant {}'s row that fails `{}`",
            context.describe(),
            command_name(context.command),
            context.holder.label,
            context.expression
        );
        let cell = self
            .must_not_touch(conn, &form, Some(self.a), statement, location(row), &[row])
            .await?;
        Ok(match cell.verdict {
            Verdict::Leak => Cell {
                detail: format!(
                    "{}; the live policy admits more than the spec declares",
                    cell.detail
                ),
                ..cell
            },
            // Said of the row this probe guards, not of tenant B's.
            Verdict::Proven if cell.detail.ends_with("row(s) affected)") => {
                Cell::proven(format!("{form}: left untouched"))
            }
            _ => cell,
        })
    }

    /// The other side of a write: the row that satisfies the expression may
    /// be written (rolled back), as declared; `None` where the spec does not
    /// let the runtime roles run the command on the table at all.
    async fn admits(
        &mut self,
        conn: &mut PgConnection,
        table: &QualifiedName,
        context: &Context<'_>,
        satisfying: &ProbeRow,
    ) -> Result<Option<Cell>, VerifyError> {
        let allowed = self
            .commands
            .get(table)
            .is_none_or(|c| c.contains(&context.command) || c.contains(&Command::All));
        if !allowed {
            return Ok(None);
        }
        let mark = self.open(conn).await?;
        let cell = self.admits_inside(conn, table, context, satisfying).await;
        self.close(conn, mark).await?;
        cell
    }

    async fn admits_inside(
        &mut self,
        conn: &mut PgConnection,
        table: &QualifiedName,
        context: &Context<'_>,
        satisfying: &ProbeRow,
    ) -> Result<Option<Cell>, VerifyError> {
        let statement = match context.command {
            Command::Insert => {
                // The new row takes the satisfying row's place in its keys.
                self.make_way(conn, &[satisfying]).await?;
                let fresh = match self.like(conn, table, context.holder, satisfying).await {
                    Ok(values) => values,
                    Err(Unbuildable(why)) => {
                        return Ok(Some(Cell::not_proven(format!(
                            "{}: {why}",
                            context.describe()
                        ))));
                    }
                };
                if self
                    .satisfies(conn, table, context.expression, &fresh)
                    .await?
                    != Ok(true)
                {
                    return Ok(None);
                }
                (
                    insert_statement(table, fresh.keys().map(String::as_str)),
                    vec![Value::Object(fresh).to_string()],
                )
            }
            Command::Update => {
                let Some(settable) = self.settable(table) else {
                    return Ok(None);
                };
                (
                    Sql::new("UPDATE ")
                        .qname(table)
                        .push(" AS x SET ")
                        .ident(&settable)
                        .push(" = x.")
                        .ident(&settable)
                        .push(LOCATED_AT_1),
                    location(satisfying),
                )
            }
            _ => (
                Sql::new("DELETE FROM ")
                    .qname(table)
                    .push(" AS x")
                    .push(LOCATED_AT_1),
                location(satisfying),
            ),
        };
        let what = format!(
            "{}: {} of tenant {}'s row that satisfies `{}`",
            context.describe(),
            command_name(context.command),
            context.holder.label,
            context.expression
        );
        let attempt = self
            .attempt(conn, Some(self.a), &statement.0, &statement.1, false)
            .await;
        Ok(Some(match attempt? {
            Attempt::Done { affected, .. } if affected > 0 => {
                Cell::proven(format!("{what}: admitted, as declared (rolled back)"))
            }
            Attempt::Done { .. } => Cell::not_proven(format!(
                "{what}: reached no row, so the declared effect is not shown"
            )),
            Attempt::Stopped(Stop::Refused(why) | Stop::Failed(why)) => Cell::not_proven(format!(
                "{what}: refused ({why}), so the declared effect is not shown"
            )),
        }))
    }

    /// Values for a new row like `row`: its columns outside every key, a new
    /// key made up (with parents of its own).
    async fn like(
        &mut self,
        conn: &mut PgConnection,
        table: &QualifiedName,
        holder: &Tenant,
        row: &ProbeRow,
    ) -> Result<Map<String, Value>, Unbuildable> {
        let fixed: Map<String, Value> = self
            .layout
            .columns(table)
            .iter()
            .filter(|c| c.writable() && !self.layout.is_key_column(table, &c.name))
            .filter_map(|c| Some((c.name.clone(), row.values.get(&c.name)?.clone())))
            .collect();
        self.factory.values_with(conn, table, holder, fixed).await
    }

    /// INSERT: a new row with the failing values is refused.
    async fn refuses_new(
        &mut self,
        conn: &mut PgConnection,
        table: &QualifiedName,
        context: &Context<'_>,
        failing: &ProbeRow,
    ) -> Result<Cell, VerifyError> {
        let mark = self.open(conn).await?;
        // The new row takes the failing row's place in its keys.
        self.make_way(conn, &[failing]).await?;
        let cell = self.refuses_new_inside(conn, table, context, failing).await;
        self.close(conn, mark).await?;
        cell
    }

    async fn refuses_new_inside(
        &mut self,
        conn: &mut PgConnection,
        table: &QualifiedName,
        context: &Context<'_>,
        failing: &ProbeRow,
    ) -> Result<Cell, VerifyError> {
        let fresh = match self.like(conn, table, context.holder, failing).await {
            Ok(values) => values,
            Err(Unbuildable(why)) => {
                return Ok(Cell::not_proven(format!("{}: {why}", context.describe())));
            }
        };
        if self
            .satisfies(conn, table, context.expression, &fresh)
            .await?
            != Ok(false)
        {
            return Ok(Cell::not_proven(format!(
                "{}: a new row like tenant {}'s row that fails `{}` does not fail it (the expression reads its key)",
                context.describe(),
                context.holder.label,
                context.expression
            )));
        }
        let form = format!(
            "{}: INSERT of a tenant {} row that fails `{}`",
            context.describe(),
            context.holder.label,
            context.expression
        );
        let cell = self
            .must_refuse_insert(conn, &form, Some(self.a), table, &fresh)
            .await?;
        Ok(if cell.verdict == Verdict::Leak {
            Cell {
                detail: format!(
                    "{}; the live policy admits more than the spec declares",
                    cell.detail
                ),
                ..cell
            }
        } else {
            cell
        })
    }

    /// UPDATE's check: rewriting a row the USING admits into one that fails
    /// the check is refused (or reaches no row). The failing values are those
    /// of a row made up to fail the check, on the columns it may set.
    async fn refuses_rewrite(
        &mut self,
        conn: &mut PgConnection,
        table: &QualifiedName,
        tenant_column: &str,
        context: &Context<'_>,
        admitted: &ProbeRow,
    ) -> Result<Cell, VerifyError> {
        let what = context.describe();
        let expression = context.expression;
        let checked = self
            .rows_for(conn, table, tenant_column, context.holder, expression)
            .await?;
        let Some(failing) = &checked.failing else {
            return Ok(Cell::proven(format!(
                "{what}: no row fails the check `{expression}` here, so there is nothing for it to refuse"
            )));
        };
        let columns: Vec<String> = self
            .layout
            .columns(table)
            .iter()
            .filter(|c| {
                c.writable()
                    && c.name != tenant_column
                    && !self.layout.is_key_column(table, &c.name)
                    && failing.values.get(&c.name) != admitted.values.get(&c.name)
            })
            .map(|c| c.name.clone())
            .collect();
        let mut rewritten = admitted.values.clone();
        for c in &columns {
            if let Some(value) = failing.values.get(c) {
                rewritten.insert(c.clone(), value.clone());
            }
        }
        if columns.is_empty()
            || self.satisfies(conn, table, expression, &rewritten).await? != Ok(false)
        {
            return Ok(Cell::proven(format!(
                "{what}: no rewrite of the admitted row fails the check `{expression}` (not shown)"
            )));
        }
        let mut sources = Sql::default();
        for (i, c) in columns.iter().enumerate() {
            if i > 0 {
                sources = sources.push(", ");
            }
            sources = sources.push("r.").ident(c);
        }
        let statement = Sql::new("UPDATE ")
            .qname(table)
            .push(" AS x SET (")
            .idents(columns.iter().map(String::as_str))
            .push(") = ROW(")
            .sql(&sources)
            .push(") FROM ")
            .sql(&Sql::json_row(table))
            .push(LOCATED_AT_2);
        let mut binds = vec![Value::Object(rewritten).to_string()];
        binds.extend(location(admitted));
        let form = format!(
            "{what}: UPDATE of tenant {}'s row into one that fails `{expression}`",
            context.holder.label
        );
        let mark = self.open(conn).await?;
        let attempt = self
            .attempt(conn, Some(self.a), &statement, &binds, false)
            .await;
        self.close(conn, mark).await?;
        Ok(match attempt? {
            Attempt::Done { affected, .. } if affected > 0 => Cell::leak(
                format!("{form} succeeded; the live policy admits more than the spec declares"),
                self.key(admitted),
            ),
            Attempt::Done { .. } => Cell::proven(format!("{form}: 0 rows")),
            Attempt::Stopped(stop) => stop.cell(&form),
        })
    }
}

/// The policy being proved, the tenant whose rows it is shown on, and the
/// expression at stake.
#[derive(Clone, Copy)]
struct Context<'p> {
    policy: &'p PolicySpec,
    holder: &'p Tenant,
    expression: &'p Expression,
    command: Command,
}

impl Context<'_> {
    fn describe(&self) -> String {
        format!(
            "policy {} ({} {})",
            self.policy.name,
            match self.policy.kind {
                PolicyKind::Permissive => "permissive",
                PolicyKind::Restrictive => "restrictive",
            },
            command_name(self.command)
        )
    }
}

/// A policy's probe rows: one on each side of its expression where one
/// could be made, and why a side could not.
#[derive(Default)]
struct Rows {
    failing: Option<ProbeRow>,
    satisfying: Option<ProbeRow>,
    unshown: Vec<String>,
}

impl Rows {
    fn side(&mut self, satisfies: bool) -> &mut Option<ProbeRow> {
        match satisfies {
            true => &mut self.satisfying,
            false => &mut self.failing,
        }
    }
}

fn command_name(command: Command) -> &'static str {
    match command {
        Command::All => "ALL",
        Command::Select => "SELECT",
        Command::Insert => "INSERT",
        Command::Update => "UPDATE",
        Command::Delete => "DELETE",
    }
}

/// The formula's alternatives (its disjunctive form, bounded), each a list
/// of leaves that must all hold.
fn alternatives(formula: &Formula) -> Vec<Vec<&Formula>> {
    match formula {
        Formula::And(parts) => {
            let mut out: Vec<Vec<&Formula>> = vec![Vec::new()];
            for part in parts {
                let choices = alternatives(part);
                let mut next = Vec::new();
                for so_far in &out {
                    for choice in &choices {
                        if next.len() < ALTERNATIVES {
                            let mut joined = so_far.clone();
                            joined.extend(choice.iter().copied());
                            next.push(joined);
                        }
                    }
                }
                out = next;
            }
            out
        }
        Formula::Or(parts) => parts
            .iter()
            .flat_map(alternatives)
            .take(ALTERNATIVES)
            .collect(),
        leaf => vec![vec![leaf]],
    }
}

#[cfg(test)]
mod tests {
    use super::alternatives;
    use crate::verify::values::check_constraints::{Formula, Test};

    /// The columns and tests of each alternative, in order.
    fn shown(formula: &Formula) -> Vec<Vec<(String, Test)>> {
        alternatives(formula)
            .into_iter()
            .map(|leaves| {
                leaves
                    .into_iter()
                    .filter_map(|leaf| match leaf {
                        Formula::Atom(atom) => Some((atom.column.clone(), atom.test.clone())),
                        _ => None,
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn an_or_gives_one_alternative_per_branch_each_keeping_what_the_and_requires() {
        let formula = Formula::parse(
            "status <> 'archived' AND (visibility = 'public' OR shared IS NOT NULL)",
            None,
        );
        let alternatives = shown(&formula);
        assert_eq!(alternatives.len(), 2, "{alternatives:?}");
        assert_eq!(alternatives[0].len(), 2);
        assert_eq!(alternatives[0][0].0, "status");
        assert_eq!(alternatives[0][1].0, "visibility");
        assert_eq!(
            alternatives[1][1],
            ("shared".to_string(), Test::NotNull),
            "{alternatives:?}"
        );
    }

    #[test]
    fn the_negation_of_a_comparison_is_the_value_that_fails_it() {
        let failing = Formula::parse("NOT (status <> 'archived')", None);
        let alternatives = shown(&failing);
        assert_eq!(alternatives.len(), 1);
        let (column, test) = &alternatives[0][0];
        assert_eq!(column, "status");
        assert!(
            matches!(test, Test::OneOf(list) if list.len() == 1 && list[0].text == "archived"),
            "{test:?}"
        );
    }
}
