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
use crate::verify::rows::{ProbeRow, Unbuildable};
use crate::verify::values::check_constraints::{Formula, Test};
use crate::verify::values::column_types;
use crate::verify::{Cell, Tenant, VerifyError};

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
                self.extra_policy(conn, table, tenant_column, policy)
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
            let mark = self.open(conn).await?;
            let cell = match self
                .rows_for(conn, table, tenant_column, holder, expression)
                .await?
            {
                Err(why) => Cell::not_proven(format!(
                    "policy {} ({}): {why}",
                    policy.name,
                    command_name(*command)
                )),
                Ok((failing, satisfying)) => {
                    let context = Context {
                        policy,
                        holder,
                        expression,
                    };
                    match command {
                        Command::Select => self.hides(conn, &context, &failing, satisfying).await?,
                        Command::Insert => {
                            self.refuses_new(conn, table, &context, &failing).await?
                        }
                        _ => {
                            let mut cells = vec![
                                self.leaves_untouched(conn, table, &context, *command, &failing)
                                    .await?,
                            ];
                            if *command == Command::Update
                                && let Some(check) = check
                                && let Some(satisfying) = &satisfying
                            {
                                cells.push(
                                    self.refuses_rewrite(
                                        conn,
                                        table,
                                        &Context {
                                            policy,
                                            holder,
                                            expression: check,
                                        },
                                        satisfying,
                                        &failing,
                                    )
                                    .await?,
                                );
                            }
                            Cell::combine(cells)
                        }
                    }
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

    /// The failing row (planted, required) and the satisfying one (planted
    /// where values can be made and the server agrees), or why not.
    async fn rows_for(
        &mut self,
        conn: &mut PgConnection,
        table: &QualifiedName,
        tenant_column: &str,
        holder: &Tenant,
        expression: &Expression,
    ) -> Result<Result<(ProbeRow, Option<ProbeRow>), String>, VerifyError> {
        let failing = Formula::parse(&format!("NOT ({expression})"), None);
        let Some(fixed) = self.values_meeting(table, tenant_column, &failing) else {
            return Ok(Err(format!(
                "no row of tenant {} that fails `{expression}` can be made up (rlsctl solves comparisons with constants, IN lists, IS [NOT] NULL and boolean columns of the table, other than the tenant column); write the policy in those terms to have it proved",
                holder.label
            )));
        };
        let values = match self.factory.values_with(conn, table, holder, fixed).await {
            Ok(values) => values,
            Err(Unbuildable(why)) => return Ok(Err(why)),
        };
        match self.satisfies(conn, table, expression, &values).await? {
            Some(false) => {}
            Some(true) => {
                return Ok(Err(format!(
                    "the row rlsctl made up to fail `{expression}` satisfies it (the expression says more than rlsctl reads); nothing is proven for it"
                )));
            }
            None => {
                return Ok(Err(format!(
                    "`{expression}` cannot be evaluated on a probe row as {}",
                    self.admin.name
                )));
            }
        }
        exec(conn, "SAVEPOINT rlsctl_policy_row").await?;
        let failing = match self
            .factory
            .insert_values(conn, table, holder, &values)
            .await
        {
            Ok(row) => row,
            Err(Unbuildable(why)) => {
                exec(conn, "ROLLBACK TO SAVEPOINT rlsctl_policy_row").await?;
                return Ok(Err(why));
            }
        };
        exec(conn, "RELEASE SAVEPOINT rlsctl_policy_row").await?;
        let satisfying = self
            .satisfying_row(conn, table, tenant_column, holder, expression)
            .await?;
        Ok(Ok((failing, satisfying)))
    }

    /// A planted row of `holder` that satisfies `expression`, if one can be made.
    async fn satisfying_row(
        &mut self,
        conn: &mut PgConnection,
        table: &QualifiedName,
        tenant_column: &str,
        holder: &Tenant,
        expression: &Expression,
    ) -> Result<Option<ProbeRow>, VerifyError> {
        let formula = Formula::parse(expression.as_str(), None);
        let Some(fixed) = self.values_meeting(table, tenant_column, &formula) else {
            return Ok(None);
        };
        let Ok(values) = self.factory.values_with(conn, table, holder, fixed).await else {
            return Ok(None);
        };
        if self.satisfies(conn, table, expression, &values).await? != Some(true) {
            return Ok(None);
        }
        exec(conn, "SAVEPOINT rlsctl_policy_row").await?;
        match self
            .factory
            .insert_values(conn, table, holder, &values)
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
    /// the server with tenant A bound (as the probe runs): `None` when it
    /// cannot be evaluated.
    async fn satisfies(
        &self,
        conn: &mut PgConnection,
        table: &QualifiedName,
        expression: &Expression,
        values: &Map<String, Value>,
    ) -> Result<Option<bool>, VerifyError> {
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
                Ok(value.as_bool())
            }
            Err(_) => {
                exec(conn, "ROLLBACK TO SAVEPOINT rlsctl_policy_eval").await?;
                exec(conn, "RELEASE SAVEPOINT rlsctl_policy_eval").await?;
                Ok(None)
            }
        }
    }

    /// SELECT: the failing row is not visible, the satisfying one is.
    async fn hides(
        &mut self,
        conn: &mut PgConnection,
        context: &Context<'_>,
        failing: &ProbeRow,
        satisfying: Option<ProbeRow>,
    ) -> Result<Cell, VerifyError> {
        let row = failing;
        let count = |table: &QualifiedName| {
            Sql::new("SELECT to_jsonb(count(*)) FROM ")
                .qname(table)
                .push(" AS x")
                .push(LOCATED_AT_1)
        };
        let what = context.describe(Command::Select);
        let seen = self
            .attempt(conn, Some(self.a), &count(&row.table), &location(row), true)
            .await?;
        let failing_cell = match seen {
            Attempt::Done { rows, .. } if rows.first() == Some(&Value::from(0)) => {
                Cell::proven(format!(
                    "{what}: tenant {}'s row that fails `{}` is hidden",
                    context.holder.label, context.expression
                ))
            }
            Attempt::Done { .. } => {
                return Ok(Cell::leak(
                    format!(
                        "{what}: tenant {}'s row that fails `{}` is visible; the live policy admits more than the spec declares",
                        context.holder.label, context.expression
                    ),
                    self.key(row),
                ));
            }
            Attempt::Stopped(Stop::Refused(why)) => {
                Cell::proven(format!("{what}: reading refused ({why})"))
            }
            Attempt::Stopped(Stop::Failed(why)) => {
                return Ok(Cell::not_proven(format!("{what}: reading failed: {why}")));
            }
        };
        let Some(satisfying) = satisfying else {
            return Ok(match context.policy.kind {
                // Admitting none of B's rows is the safe side of a permissive policy.
                PolicyKind::Permissive => failing_cell,
                PolicyKind::Restrictive => Cell::not_proven(format!(
                    "{what}: no row of tenant A that satisfies `{}` could be made up, so a policy hiding every row would pass too",
                    context.expression
                )),
            });
        };
        let seen = self
            .attempt(
                conn,
                Some(self.a),
                &count(&satisfying.table),
                &location(&satisfying),
                true,
            )
            .await?;
        Ok(match seen {
            Attempt::Done { rows, .. } if rows.first() == Some(&Value::from(1)) => {
                Cell::proven(format!(
                    "{}; its row that satisfies the expression is visible, as declared",
                    failing_cell.detail
                ))
            }
            Attempt::Done { .. } => Cell::not_proven(format!(
                "{what}: tenant {}'s row that satisfies `{}` is hidden too, so the declared effect is not shown",
                context.holder.label, context.expression
            )),
            Attempt::Stopped(Stop::Refused(why) | Stop::Failed(why)) => Cell::not_proven(format!(
                "{what}: reading the row that satisfies `{}` failed: {why}",
                context.expression
            )),
        })
    }

    /// UPDATE or DELETE: the failing row is left as it was.
    async fn leaves_untouched(
        &mut self,
        conn: &mut PgConnection,
        table: &QualifiedName,
        context: &Context<'_>,
        command: Command,
        failing: &ProbeRow,
    ) -> Result<Cell, VerifyError> {
        let row = failing;
        let statement = match command {
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
            context.describe(command),
            command_name(command),
            context.holder.label,
            context.expression
        );
        let cell = self
            .must_not_touch(conn, &form, Some(self.a), statement, location(row), &[row])
            .await?;
        Ok(match cell.verdict {
            crate::verify::Verdict::Leak => Cell {
                detail: format!(
                    "{}; the live policy admits more than the spec declares",
                    cell.detail
                ),
                ..cell
            },
            _ => cell,
        })
    }

    /// INSERT: a new row with the failing values is refused.
    async fn refuses_new(
        &mut self,
        conn: &mut PgConnection,
        table: &QualifiedName,
        context: &Context<'_>,
        failing: &ProbeRow,
    ) -> Result<Cell, VerifyError> {
        // A new row like the failing one: its columns of the expression, the
        // rest (a new key) made up afresh.
        let mut columns = Vec::new();
        Formula::parse(&format!("NOT ({})", context.expression), None).columns(&mut columns);
        let fixed: Map<String, Value> = columns
            .iter()
            .filter_map(|c| Some((c.clone(), failing.values.get(c)?.clone())))
            .collect();
        let fresh = match self
            .factory
            .values_with(conn, table, context.holder, fixed)
            .await
        {
            Ok(values) => values,
            Err(Unbuildable(why)) => {
                return Ok(Cell::not_proven(format!(
                    "{}: {why}",
                    context.describe(Command::Insert)
                )));
            }
        };
        let form = format!(
            "{}: INSERT of a tenant {} row that fails `{}`",
            context.describe(Command::Insert),
            context.holder.label,
            context.expression
        );
        let cell = self
            .must_refuse_insert(conn, &form, Some(self.a), table, &fresh)
            .await?;
        Ok(if cell.verdict == crate::verify::Verdict::Leak {
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

    /// UPDATE's check: rewriting the satisfying row into the failing values
    /// is refused (or reaches no row).
    async fn refuses_rewrite(
        &mut self,
        conn: &mut PgConnection,
        table: &QualifiedName,
        context: &Context<'_>,
        satisfying: &ProbeRow,
        failing: &ProbeRow,
    ) -> Result<Cell, VerifyError> {
        let failing_values = Formula::parse(&format!("NOT ({})", context.expression), None);
        let mut columns = Vec::new();
        failing_values.columns(&mut columns);
        columns.retain(|c| {
            self.layout
                .column(table, c)
                .is_some_and(|col| col.writable())
                && failing.values.contains_key(c)
                && self.layout.tenant_columns.get(table) != Some(c)
        });
        if columns.is_empty() {
            return Ok(Cell::not_proven(format!(
                "{}: no column of `{}` to rewrite",
                context.describe(Command::Update),
                context.expression
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
            .push(") = (SELECT ")
            .sql(&sources)
            .push(" FROM ")
            .sql(&Sql::json_row(table))
            .push(")")
            .push(LOCATED_AT_2);
        let mut binds = vec![Value::Object(failing.values.clone()).to_string()];
        binds.extend(location(satisfying));
        let form = format!(
            "{}: UPDATE of tenant {}'s row into one that fails `{}`",
            context.describe(Command::Update),
            context.holder.label,
            context.expression
        );
        let mark = self.open(conn).await?;
        let attempt = self
            .attempt(conn, Some(self.a), &statement, &binds, false)
            .await;
        self.close(conn, mark).await?;
        Ok(match attempt? {
            Attempt::Done { affected, .. } if affected > 0 => Cell::leak(
                format!("{form} succeeded; the live policy admits more than the spec declares"),
                self.key(satisfying),
            ),
            Attempt::Done { .. } => Cell::proven(format!("{form}: 0 rows")),
            Attempt::Stopped(stop) => stop.cell(&form),
        })
    }
}

/// The policy being proved, the tenant whose rows it is shown on, and the
/// expression at stake.
struct Context<'p> {
    policy: &'p PolicySpec,
    holder: &'p Tenant,
    expression: &'p Expression,
}

impl Context<'_> {
    fn describe(&self, command: Command) -> String {
        format!(
            "policy {} ({} {})",
            self.policy.name,
            match self.policy.kind {
                PolicyKind::Permissive => "permissive",
                PolicyKind::Restrictive => "restrictive",
            },
            command_name(command)
        )
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
