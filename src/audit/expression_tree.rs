//! What a stored policy expression does when no tenant is bound, read from
//! its expression tree rather than its text.
//!
//! The catalog gives each policy's USING and WITH CHECK as PostgreSQL's own
//! deparse (`pg_get_expr`). PostgreSQL's grammar (libpg_query, in the mode
//! PL/pgSQL uses for expressions) turns that back into a tree, and a small
//! evaluator runs the tree three times: with the tenant setting never set in
//! the session (`current_setting(name, true)` is NULL), after it was reset or
//! a `SET LOCAL` ended (it reads `''`), and with a tenant bound. Columns and
//! anything else the evaluator does not know stay unknown, so an answer of
//! "true" is true for every row. Two questions are asked of the tree:
//!
//! - [`PolicyExpression::opens_when_unbound`]: an OR branch (or the whole
//!   expression, since permissive policies are OR-ed) that is closed for a
//!   bound tenant but open when none is bound:
//!   `current_setting('app.tenant', true) IS NULL OR tenant_id = …`.
//! - [`PolicyExpression::branches_not_scoped_to_tenant`]: an OR branch that
//!   never looks at the tenant column and is not closed for a bound tenant, so
//!   the OR as a whole admits other tenants' rows: `tenant_id = x OR true`.
//!
//! Precision over recall: a shape the evaluator does not understand is
//! unknown, and unknown never produces a finding on its own.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::rc::Rc;

use pg_query::protobuf::{self, BoolExprType, Node, node::Node as N};
use serde_json::Value as Json;

use crate::quote::QualifiedName;

/// What carries the tenant in a policy: the column and the values it is
/// compared with (settings read by `current_setting`, the context function).
#[derive(Debug, Clone, Copy)]
pub struct Tenancy<'a> {
    pub column: &'a str,
    pub settings: &'a [String],
    pub function: Option<&'a QualifiedName>,
}

/// A policy expression parsed from the server's deparse.
#[derive(Debug, Clone)]
pub struct PolicyExpression {
    /// The parse's grammar version and statement, to deparse branches with.
    version: i32,
    statement: protobuf::SelectStmt,
    root: Node,
}

impl PolicyExpression {
    /// Parses a deparsed expression; `None` if it is not one expression
    /// (never the case for the server's own deparse).
    pub fn parse(text: &str) -> Option<PolicyExpression> {
        let parsed = pg_query::parse(text, pg_query::ParserOptions::PLPGSQL_EXPR).ok()?;
        let [statement] = parsed.protobuf.stmts.as_slice() else {
            return None;
        };
        let Some(N::SelectStmt(select)) = statement.stmt.as_ref()?.node.as_ref() else {
            return None;
        };
        let [target] = select.target_list.as_slice() else {
            return None;
        };
        let Some(N::ResTarget(target)) = target.node.as_ref() else {
            return None;
        };
        let root = target.val.as_deref()?.clone();
        Some(PolicyExpression {
            version: parsed.protobuf.version,
            statement: (**select).clone(),
            root,
        })
    }

    /// The branches that are closed while a tenant is bound but open when
    /// the tenant setting is unset, NULL or `''`, as SQL text.
    pub fn opens_when_unbound(&self, tenancy: &Tenancy) -> Vec<String> {
        let evaluator = Evaluator::new(&self.root, tenancy);
        let mut found = Vec::new();
        evaluator.unbound_branches(&self.root, true, &mut found);
        found.into_iter().map(|n| self.text(n)).collect()
    }

    /// The branches of an OR that do not constrain the tenant column and are
    /// not closed for a bound tenant, as SQL text. Empty when the expression
    /// as a whole constrains the tenant.
    pub fn branches_not_scoped_to_tenant(&self, tenancy: &Tenancy) -> Vec<String> {
        let evaluator = Evaluator::new(&self.root, tenancy);
        let mut found = Vec::new();
        evaluator.unscoped_branches(&self.root, &mut found);
        found.into_iter().map(|n| self.text(n)).collect()
    }

    /// The expression's tree.
    pub(crate) fn root(&self) -> &Node {
        &self.root
    }

    /// A subtree back as SQL, through the same grammar's deparser.
    pub(crate) fn text(&self, node: &Node) -> String {
        let mut select = self.statement.clone();
        select.target_list = vec![Node {
            node: Some(N::ResTarget(Box::new(protobuf::ResTarget {
                val: Some(Box::new(node.clone())),
                ..Default::default()
            }))),
        }];
        let result = protobuf::ParseResult {
            version: self.version,
            stmts: vec![protobuf::RawStmt {
                stmt: Some(Box::new(Node {
                    node: Some(N::SelectStmt(Box::new(select))),
                })),
                stmt_location: 0,
                stmt_len: 0,
            }],
        };
        pg_query::deparse(&result, Default::default())
            .ok()
            .and_then(|sql| sql.strip_prefix("SELECT ").map(str::to_string))
            .unwrap_or_else(|| "(an expression)".into())
    }
}

/// The settings and zero-argument functions (as written: `[schema,] name`)
/// that `text` compares with `column`: what carries the tenant in it.
pub fn tenant_sources(text: &str, column: &str) -> (BTreeSet<String>, Vec<Vec<String>>) {
    let mut settings = BTreeSet::new();
    let mut functions = Vec::new();
    if let Some(e) = PolicyExpression::parse(text) {
        let json = serde_json::to_value(&e.root).unwrap_or(Json::Null);
        infer_sources(&json, column, &mut settings, &mut functions);
    }
    (settings, functions)
}

/// The columns `text` compares with what can only be a tenant context: a
/// `current_setting(…)` call or a zero-argument function call (bare, cast
/// or in a sub-select), on a side that reads no column itself.
/// `org_id = (SELECT auth.org_id())` gives `org_id`; a membership lookup
/// (`org_id IN (SELECT org_id FROM members …)`) gives nothing.
pub fn columns_compared_with_context(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    if let Some(e) = PolicyExpression::parse(text) {
        let json = serde_json::to_value(&e.root).unwrap_or(Json::Null);
        compared_columns(&json, &mut out);
    }
    out
}

fn compared_columns(json: &Json, out: &mut BTreeSet<String>) {
    match json {
        Json::Object(map) => {
            let sides = match (map.get("AExpr"), map.get("SubLink")) {
                (Some(e), _) => Some((e.get("lexpr"), e.get("rexpr"))),
                (_, Some(l)) => Some((l.get("testexpr"), l.get("subselect"))),
                _ => None,
            };
            if let Some((Some(left), Some(right))) = sides {
                for (this, other) in [(left, right), (right, left)] {
                    let Some(column) = bare_column(this) else {
                        continue;
                    };
                    let (mut settings, mut functions) = (BTreeSet::new(), Vec::new());
                    collect_sources(other, &mut settings, &mut functions);
                    if (!settings.is_empty() || !functions.is_empty()) && !reads_a_column(other) {
                        out.insert(column);
                    }
                }
            }
            // A sub-select's own comparisons are about its own tables' columns.
            if let Some(link) = map.get("SubLink") {
                if let Some(test) = link.get("testexpr") {
                    compared_columns(test, out);
                }
                return;
            }
            for v in map.values() {
                compared_columns(v, out);
            }
        }
        Json::Array(items) => {
            for v in items {
                compared_columns(v, out);
            }
        }
        _ => {}
    }
}

/// The column a node is, possibly under casts.
fn bare_column(node: &Json) -> Option<String> {
    if let Some(arg) = node.pointer("/node/TypeCast/arg") {
        return bare_column(arg);
    }
    let fields = node.pointer("/node/ColumnRef/fields")?.as_array()?;
    fields
        .last()?
        .pointer("/node/String/sval")
        .and_then(Json::as_str)
        .map(str::to_string)
}

fn reads_a_column(json: &Json) -> bool {
    match json {
        Json::Object(map) => map.contains_key("ColumnRef") || map.values().any(reads_a_column),
        Json::Array(items) => items.iter().any(reads_a_column),
        _ => false,
    }
}

/// Whether `text` tests `column IS NULL` anywhere: a policy that does
/// admits the rows whose tenant is NULL, whichever tenant is bound.
pub fn admits_null_tenant(text: &str, column: &str) -> bool {
    PolicyExpression::parse(text).is_some_and(|e| {
        let json = serde_json::to_value(&e.root).unwrap_or(Json::Null);
        has_is_null_test(&json, column)
    })
}

fn has_is_null_test(json: &Json, column: &str) -> bool {
    match json {
        Json::Object(map) => {
            if let Some(test) = map.get("NullTest") {
                let is_null = test.get("nulltesttype").and_then(Json::as_str) == Some("IS_NULL")
                    || test.get("nulltesttype").and_then(Json::as_i64) == Some(1);
                if is_null && test.get("arg").is_some_and(|a| mentions(a, column, false)) {
                    return true;
                }
            }
            map.values().any(|v| has_is_null_test(v, column))
        }
        Json::Array(items) => items.iter().any(|v| has_is_null_test(v, column)),
        _ => false,
    }
}

/// What the tree says about one expression.
#[derive(Debug, Default)]
pub struct Analysis {
    /// See [`PolicyExpression::opens_when_unbound`].
    pub opens_when_unbound: Vec<String>,
    /// See [`PolicyExpression::branches_not_scoped_to_tenant`].
    pub not_scoped_to_tenant: Vec<String>,
}

/// Each distinct expression is parsed and analysed once per audit: the
/// generated policy's text is the same on every tenant table, so ten
/// thousand tables cost one analysis, not ten thousand.
#[derive(Debug, Default)]
pub struct Analyses {
    /// (expression, tenant column) → analysis; one audit has one set of
    /// tenant settings and one context function.
    cache: RefCell<HashMap<(String, String), Rc<Analysis>>>,
}

impl Analyses {
    pub fn of(&self, text: &str, tenancy: &Tenancy) -> Rc<Analysis> {
        let key = (text.to_string(), tenancy.column.to_string());
        if let Some(found) = self.cache.borrow().get(&key) {
            return Rc::clone(found);
        }
        let analysis = Rc::new(
            PolicyExpression::parse(text)
                .map(|e| Analysis {
                    opens_when_unbound: e.opens_when_unbound(tenancy),
                    not_scoped_to_tenant: e.branches_not_scoped_to_tenant(tenancy),
                })
                .unwrap_or_default(),
        );
        self.cache.borrow_mut().insert(key, Rc::clone(&analysis));
        analysis
    }
}

/// The three states of the tenant setting the tree is evaluated in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Binding {
    /// Never set in this session: `current_setting(name, true)` is NULL,
    /// `current_setting(name)` raises.
    NeverSet,
    /// Set once, then reset or a `SET LOCAL` ended: it reads `''`.
    Reset,
    /// A tenant is bound.
    Bound,
}

/// The possible truth values of a boolean, as a set.
type Truth = u8;
const T: Truth = 1;
const F: Truth = 2;
const NULL: Truth = 4;
/// The expression raises an error: nothing is visible.
const ERR: Truth = 8;
const ANY: Truth = T | F | NULL;

fn elements(t: Truth) -> impl Iterator<Item = Truth> {
    [T, F, NULL, ERR].into_iter().filter(move |e| t & e != 0)
}

fn combine(a: Truth, b: Truth, op: fn(Truth, Truth) -> Truth) -> Truth {
    elements(a)
        .flat_map(|x| elements(b).map(move |y| op(x, y)))
        .fold(0, |acc, r| acc | r)
}

fn or(a: Truth, b: Truth) -> Truth {
    combine(a, b, |x, y| {
        if x == T || y == T {
            T
        } else if x == ERR || y == ERR {
            ERR
        } else if x == NULL || y == NULL {
            NULL
        } else {
            F
        }
    })
}

fn and(a: Truth, b: Truth) -> Truth {
    combine(a, b, |x, y| {
        if x == F || y == F {
            F
        } else if x == ERR || y == ERR {
            ERR
        } else if x == NULL || y == NULL {
            NULL
        } else {
            T
        }
    })
}

fn not(a: Truth) -> Truth {
    elements(a)
        .map(|x| match x {
            T => F,
            F => T,
            other => other,
        })
        .fold(0, |acc, r| acc | r)
}

/// What the evaluator knows about a value.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Null,
    Text(String),
    Int(i64),
    /// A length or count known to be above zero.
    Positive,
    /// The bound tenant: not NULL, not `''`, not known otherwise.
    Tenant,
    Bool(Truth),
    Error,
    Unknown,
}

impl Value {
    fn truth(&self) -> Truth {
        match self {
            Value::Bool(t) => *t,
            Value::Null => NULL,
            Value::Error => ERR,
            _ => ANY,
        }
    }
}

struct Evaluator<'a> {
    column: &'a str,
    /// Settings that hold the tenant: the given ones and any compared with
    /// the tenant column in this expression.
    settings: BTreeSet<String>,
    /// Functions that return the tenant (qualified or bare names).
    functions: Vec<Vec<String>>,
}

impl<'a> Evaluator<'a> {
    fn new(root: &Node, tenancy: &Tenancy<'a>) -> Evaluator<'a> {
        let mut settings: BTreeSet<String> = tenancy.settings.iter().cloned().collect();
        let mut functions: Vec<Vec<String>> = tenancy
            .function
            .map(|f| vec![f.schema.clone(), f.name.clone()])
            .into_iter()
            .collect();
        let json = serde_json::to_value(root).unwrap_or(Json::Null);
        infer_sources(&json, tenancy.column, &mut settings, &mut functions);
        Evaluator {
            column: tenancy.column,
            settings,
            functions,
        }
    }

    fn mentions_column(&self, node: &Node, outside_null_tests: bool) -> bool {
        let json = serde_json::to_value(node).unwrap_or(Json::Null);
        mentions(&json, self.column, outside_null_tests)
    }

    fn truth(&self, node: &Node, binding: Binding) -> Truth {
        self.eval(node, binding).truth()
    }

    /// A branch that is closed for a bound tenant and, with no tenant bound,
    /// is true for every row, or for rows chosen without the tenant column.
    fn opens_when_unbound(&self, node: &Node) -> bool {
        if self.truth(node, Binding::Bound) & T != 0 {
            return false;
        }
        [Binding::NeverSet, Binding::Reset].into_iter().any(|b| {
            let t = self.truth(node, b);
            t == T || (t & T != 0 && !self.mentions_column(node, false))
        })
    }

    /// Walks the positions whose truth decides visibility (through AND and
    /// OR, not into NOT or sub-queries); a disjunct that opens when unbound
    /// is reported, the innermost one only.
    fn unbound_branches<'n>(&self, node: &'n Node, disjunct: bool, found: &mut Vec<&'n Node>) {
        let before = found.len();
        if let Some(N::BoolExpr(b)) = &node.node {
            match BoolExprType::try_from(b.boolop) {
                Ok(BoolExprType::OrExpr) => {
                    for arg in &b.args {
                        self.unbound_branches(arg, true, found);
                    }
                }
                Ok(BoolExprType::AndExpr) => {
                    for arg in &b.args {
                        self.unbound_branches(arg, false, found);
                    }
                }
                _ => {}
            }
        }
        if found.len() == before && disjunct && self.opens_when_unbound(node) {
            found.push(node);
        }
    }

    /// Whether a bound tenant's rows are all this expression can admit: it
    /// compares the tenant column, or is closed while a tenant is bound.
    fn constrains_tenant(&self, node: &Node) -> bool {
        if let Some(N::BoolExpr(b)) = &node.node {
            match BoolExprType::try_from(b.boolop) {
                Ok(BoolExprType::OrExpr) => {
                    return b.args.iter().all(|a| self.constrains_tenant(a));
                }
                Ok(BoolExprType::AndExpr) => {
                    return b.args.iter().any(|a| self.constrains_tenant(a));
                }
                _ => {}
            }
        }
        self.mentions_column(node, true) || self.truth(node, Binding::Bound) & T == 0
    }

    fn unscoped_branches<'n>(&self, node: &'n Node, found: &mut Vec<&'n Node>) {
        if self.constrains_tenant(node) {
            return;
        }
        let Some(N::BoolExpr(b)) = &node.node else {
            return;
        };
        match BoolExprType::try_from(b.boolop) {
            Ok(BoolExprType::OrExpr) => {
                found.extend(b.args.iter().filter(|a| !self.constrains_tenant(a)));
            }
            Ok(BoolExprType::AndExpr) => {
                for arg in &b.args {
                    self.unscoped_branches(arg, found);
                }
            }
            _ => {}
        }
    }

    fn eval(&self, node: &Node, binding: Binding) -> Value {
        let Some(node) = &node.node else {
            return Value::Unknown;
        };
        match node {
            N::AConst(c) => constant(c),
            N::TypeCast(c) => {
                let value = self.eval_opt(&c.arg, binding);
                let ty = c
                    .type_name
                    .as_ref()
                    .and_then(|t| names(&t.names).last().cloned())
                    .unwrap_or_default();
                let array = c
                    .type_name
                    .as_ref()
                    .is_some_and(|t| !t.array_bounds.is_empty());
                if array {
                    Value::Unknown
                } else {
                    cast(value, &ty)
                }
            }
            N::CollateClause(c) => self.eval_opt(&c.arg, binding),
            N::BoolExpr(b) => {
                let args = b.args.iter().map(|a| self.truth(a, binding));
                Value::Bool(match BoolExprType::try_from(b.boolop) {
                    Ok(BoolExprType::AndExpr) => args.fold(T, and),
                    Ok(BoolExprType::OrExpr) => args.fold(F, or),
                    Ok(BoolExprType::NotExpr) => not(args.fold(T, and)),
                    _ => ANY,
                })
            }
            N::NullTest(t) => {
                let is_null = null_test(&self.eval_opt(&t.arg, binding));
                Value::Bool(
                    if t.nulltesttype == protobuf::NullTestType::IsNotNull as i32 {
                        not(is_null)
                    } else {
                        is_null
                    },
                )
            }
            N::BooleanTest(t) => {
                use protobuf::BoolTestType as B;
                let value = self.eval_opt(&t.arg, binding).truth();
                let test = |wanted: Truth| {
                    elements(value)
                        .map(|x| match x {
                            ERR => ERR,
                            x if x == wanted => T,
                            _ => F,
                        })
                        .fold(0, |acc, r| acc | r)
                };
                Value::Bool(match B::try_from(t.booltesttype) {
                    Ok(B::IsTrue) => test(T),
                    Ok(B::IsNotTrue) => not(test(T)),
                    Ok(B::IsFalse) => test(F),
                    Ok(B::IsNotFalse) => not(test(F)),
                    Ok(B::IsUnknown) => test(NULL),
                    Ok(B::IsNotUnknown) => not(test(NULL)),
                    _ => ANY,
                })
            }
            N::AExpr(e) => self.eval_a_expr(e, binding),
            N::CoalesceExpr(c) => {
                for arg in &c.args {
                    match self.eval(arg, binding) {
                        Value::Null => continue,
                        other => return other,
                    }
                }
                Value::Null
            }
            N::FuncCall(call) => self.eval_call(call, binding),
            N::SubLink(link) if link.sub_link_type == protobuf::SubLinkType::ExprSublink as i32 => {
                match link.subselect.as_deref().and_then(|s| s.node.as_ref()) {
                    Some(N::SelectStmt(select)) => match scalar_select(select) {
                        Some(value) => self.eval(value, binding),
                        None => Value::Unknown,
                    },
                    _ => Value::Unknown,
                }
            }
            _ => Value::Unknown,
        }
    }

    fn eval_opt(&self, node: &Option<Box<Node>>, binding: Binding) -> Value {
        node.as_deref()
            .map_or(Value::Unknown, |n| self.eval(n, binding))
    }

    fn eval_a_expr(&self, e: &protobuf::AExpr, binding: Binding) -> Value {
        use protobuf::AExprKind as K;
        let op = names(&e.name).last().cloned().unwrap_or_default();
        let left = self.eval_opt(&e.lexpr, binding);
        match K::try_from(e.kind) {
            Ok(K::AexprOp) => {
                let right = self.eval_opt(&e.rexpr, binding);
                match op.as_str() {
                    "=" => Value::Bool(equal(&left, &right)),
                    "<>" | "!=" => Value::Bool(not(equal(&left, &right))),
                    "->>" | "->" | "#>>" | "#>" => match (left, right) {
                        (Value::Error, _) | (_, Value::Error) => Value::Error,
                        (Value::Null, _) | (_, Value::Null) => Value::Null,
                        // A bound claims document carries the tenant.
                        (Value::Tenant, _) => Value::Tenant,
                        _ => Value::Unknown,
                    },
                    // Built-in operators are strict: NULL in, NULL out.
                    _ => match (left, right) {
                        (Value::Error, _) | (_, Value::Error) => Value::Error,
                        (Value::Null, _) | (_, Value::Null) => Value::Null,
                        _ => Value::Unknown,
                    },
                }
            }
            Ok(K::AexprDistinct) | Ok(K::AexprNotDistinct) => {
                let right = self.eval_opt(&e.rexpr, binding);
                let same = match (&left, &right) {
                    (Value::Error, _) | (_, Value::Error) => ERR,
                    (Value::Null, Value::Null) => T,
                    (Value::Null, other) | (other, Value::Null) => match other {
                        Value::Unknown => T | F,
                        Value::Bool(t) if t & NULL != 0 => T | F,
                        _ => F,
                    },
                    _ => {
                        // NULL on one side only is "distinct", never NULL.
                        let eq = equal(&left, &right);
                        (eq & (T | F | ERR)) | if eq & NULL != 0 { T | F } else { 0 }
                    }
                };
                Value::Bool(if e.kind == K::AexprDistinct as i32 {
                    not(same)
                } else {
                    same
                })
            }
            Ok(K::AexprNullif) => {
                let right = self.eval_opt(&e.rexpr, binding);
                match (&left, equal(&left, &right)) {
                    (Value::Error, _) => Value::Error,
                    (Value::Null, _) => Value::Null,
                    (_, T) => Value::Null,
                    (_, F) => left,
                    _ => Value::Unknown,
                }
            }
            Ok(K::AexprOpAny) | Ok(K::AexprIn) => {
                let items: Option<Vec<Value>> =
                    match e.rexpr.as_deref().and_then(|r| r.node.as_ref()) {
                        Some(N::AArrayExpr(a)) => {
                            Some(a.elements.iter().map(|x| self.eval(x, binding)).collect())
                        }
                        Some(N::List(l)) => {
                            Some(l.items.iter().map(|x| self.eval(x, binding)).collect())
                        }
                        _ => None,
                    };
                let Some(items) = items else {
                    return match left {
                        Value::Null => Value::Null,
                        Value::Error => Value::Error,
                        _ => Value::Unknown,
                    };
                };
                match op.as_str() {
                    "=" => Value::Bool(items.iter().map(|i| equal(&left, i)).fold(F, or)),
                    "<>" if e.kind == K::AexprIn as i32 => {
                        Value::Bool(items.iter().map(|i| not(equal(&left, i))).fold(T, and))
                    }
                    _ => Value::Unknown,
                }
            }
            Ok(K::AexprLike | K::AexprIlike | K::AexprSimilar) => match left {
                Value::Null => Value::Null,
                Value::Error => Value::Error,
                _ => Value::Unknown,
            },
            _ => Value::Unknown,
        }
    }

    fn eval_call(&self, call: &protobuf::FuncCall, binding: Binding) -> Value {
        let name = names(&call.funcname);
        let bare = name.last().map(String::as_str).unwrap_or_default();
        let builtin = name.len() == 1 || name.first().map(String::as_str) == Some("pg_catalog");
        if builtin && bare == "current_setting" {
            let setting = call.args.first().and_then(string_constant);
            if setting.is_some_and(|s| self.settings.contains(&s)) {
                let missing_ok = call
                    .args
                    .get(1)
                    .map(|a| self.truth(a, binding))
                    .unwrap_or(F);
                return match binding {
                    Binding::NeverSet if missing_ok == T => Value::Null,
                    Binding::NeverSet if missing_ok == F => Value::Error,
                    Binding::NeverSet => Value::Unknown,
                    Binding::Reset => Value::Text(String::new()),
                    Binding::Bound => Value::Tenant,
                };
            }
            return Value::Unknown;
        }
        if call.args.is_empty() && self.is_tenant_function(&name) {
            // The context function turns an unbound setting into NULL.
            return match binding {
                Binding::Bound => Value::Tenant,
                _ => Value::Null,
            };
        }
        let args: Vec<Value> = call.args.iter().map(|a| self.eval(a, binding)).collect();
        if args.contains(&Value::Error) {
            return Value::Error;
        }
        match (builtin, bare, args.as_slice()) {
            (true, "length" | "char_length" | "octet_length", [arg]) => match arg {
                Value::Null => Value::Null,
                Value::Text(s) => Value::Int(s.chars().count() as i64),
                Value::Tenant => Value::Positive,
                _ => Value::Unknown,
            },
            (true, "btrim" | "trim" | "lower" | "upper", [arg]) => match arg {
                Value::Null => Value::Null,
                Value::Text(s) if s.is_empty() => Value::Text(String::new()),
                Value::Tenant => Value::Tenant,
                _ => Value::Unknown,
            },
            _ => Value::Unknown,
        }
    }

    fn is_tenant_function(&self, name: &[String]) -> bool {
        self.functions.iter().any(|f| match (name, f.as_slice()) {
            ([n], [.., fname]) => n == fname,
            ([s, n], [fs, fname]) => s == fs && n == fname,
            _ => false,
        })
    }
}

/// The single value of `(SELECT value)`: no FROM, no WHERE, nothing else.
pub(crate) fn scalar_select(select: &protobuf::SelectStmt) -> Option<&Node> {
    if !select.from_clause.is_empty()
        || select.where_clause.is_some()
        || select.having_clause.is_some()
        || !select.group_clause.is_empty()
        || select.limit_count.is_some()
        || select.larg.is_some()
    {
        return None;
    }
    match select.target_list.as_slice() {
        [target] => match target.node.as_ref() {
            Some(N::ResTarget(t)) => t.val.as_deref(),
            _ => None,
        },
        _ => None,
    }
}

pub(crate) fn names(nodes: &[Node]) -> Vec<String> {
    nodes
        .iter()
        .filter_map(|n| match &n.node {
            Some(N::String(s)) => Some(s.sval.clone()),
            _ => None,
        })
        .collect()
}

fn constant(c: &protobuf::AConst) -> Value {
    use protobuf::a_const::Val;
    if c.isnull {
        return Value::Null;
    }
    match &c.val {
        Some(Val::Sval(s)) => Value::Text(s.sval.clone()),
        Some(Val::Ival(i)) => Value::Int(i64::from(i.ival)),
        Some(Val::Boolval(b)) => Value::Bool(if b.boolval { T } else { F }),
        _ => Value::Unknown,
    }
}

/// `'app.tenant'` or `'app.tenant'::text`.
fn string_constant(node: &Node) -> Option<String> {
    match node.node.as_ref()? {
        N::AConst(c) => match constant(c) {
            Value::Text(s) => Some(s),
            _ => None,
        },
        N::TypeCast(c) => string_constant(c.arg.as_deref()?),
        _ => None,
    }
}

const TEXT_TYPES: &[&str] = &["text", "varchar", "bpchar", "name", "char"];
const INT_TYPES: &[&str] = &["int2", "int4", "int8", "integer", "bigint", "smallint"];

fn cast(value: Value, ty: &str) -> Value {
    let textual = TEXT_TYPES.contains(&ty);
    match value {
        Value::Null | Value::Error | Value::Tenant | Value::Unknown => value,
        Value::Text(s) if textual => Value::Text(s),
        Value::Text(s) if INT_TYPES.contains(&ty) => {
            s.trim().parse().map(Value::Int).unwrap_or(Value::Error)
        }
        // `''::uuid`, `''::json`, `''::boolean` raise.
        Value::Text(s) if s.is_empty() => Value::Error,
        Value::Int(i) if INT_TYPES.contains(&ty) => Value::Int(i),
        Value::Int(i) if textual => Value::Text(i.to_string()),
        Value::Bool(t) if ty == "bool" || ty == "boolean" => Value::Bool(t),
        _ => Value::Unknown,
    }
}

fn null_test(value: &Value) -> Truth {
    match value {
        Value::Null => T,
        Value::Error => ERR,
        Value::Unknown => T | F,
        Value::Bool(t) => elements(*t)
            .map(|x| match x {
                NULL => T,
                ERR => ERR,
                _ => F,
            })
            .fold(0, |acc, r| acc | r),
        _ => F,
    }
}

/// `a = b` over what is known of both sides.
fn equal(a: &Value, b: &Value) -> Truth {
    use Value as V;
    match (a, b) {
        (V::Error, _) | (_, V::Error) => ERR,
        (V::Null, _) | (_, V::Null) => NULL,
        (V::Unknown, _) | (_, V::Unknown) => ANY,
        (V::Text(x), V::Text(y)) => {
            if x == y {
                T
            } else {
                F
            }
        }
        (V::Int(x), V::Int(y)) => {
            if x == y {
                T
            } else {
                F
            }
        }
        (V::Tenant, V::Text(s)) | (V::Text(s), V::Tenant) if s.is_empty() => F,
        (V::Positive, V::Int(i)) | (V::Int(i), V::Positive) if *i <= 0 => F,
        (V::Bool(x), V::Bool(y)) => combine(*x, *y, |p, q| match (p, q) {
            (ERR, _) | (_, ERR) => ERR,
            (NULL, _) | (_, NULL) => NULL,
            (p, q) if p == q => T,
            _ => F,
        }),
        _ => T | F,
    }
}

/// Whether `json` (a serialized parse tree) refers to a column named
/// `column`, optionally not counting `col IS [NOT] NULL` tests.
fn mentions(json: &Json, column: &str, outside_null_tests: bool) -> bool {
    match json {
        Json::Object(map) => {
            if outside_null_tests && map.contains_key("NullTest") {
                return false;
            }
            if let Some(Json::Object(column_ref)) = map.get("ColumnRef") {
                let last = column_ref
                    .get("fields")
                    .and_then(Json::as_array)
                    .and_then(|fields| fields.last())
                    .and_then(|f| f.pointer("/node/String/sval"))
                    .and_then(Json::as_str);
                if last == Some(column) {
                    return true;
                }
            }
            map.values()
                .any(|v| mentions(v, column, outside_null_tests))
        }
        Json::Array(items) => items
            .iter()
            .any(|v| mentions(v, column, outside_null_tests)),
        _ => false,
    }
}

/// Settings and functions compared with the tenant column anywhere in the
/// expression hold the tenant, whatever their name.
fn infer_sources(
    json: &Json,
    column: &str,
    settings: &mut BTreeSet<String>,
    functions: &mut Vec<Vec<String>>,
) {
    match json {
        Json::Object(map) => {
            let sides = match (map.get("AExpr"), map.get("SubLink")) {
                (Some(e), _) => Some((e.get("lexpr"), e.get("rexpr"))),
                (_, Some(l)) => Some((l.get("testexpr"), l.get("subselect"))),
                _ => None,
            };
            if let Some((Some(left), Some(right))) = sides {
                for (this, other) in [(left, right), (right, left)] {
                    if mentions(this, column, true) && !mentions(other, column, false) {
                        collect_sources(other, settings, functions);
                    }
                }
            }
            for v in map.values() {
                infer_sources(v, column, settings, functions);
            }
        }
        Json::Array(items) => {
            for v in items {
                infer_sources(v, column, settings, functions);
            }
        }
        _ => {}
    }
}

/// The settings read by `current_setting` and the functions called without
/// arguments anywhere in `node`: what can carry a tenant into a policy.
pub(crate) fn sources(node: &Node) -> (BTreeSet<String>, Vec<Vec<String>>) {
    let json = serde_json::to_value(node).unwrap_or(Json::Null);
    let mut settings = BTreeSet::new();
    let mut functions = Vec::new();
    collect_sources(&json, &mut settings, &mut functions);
    (settings, functions)
}

fn collect_sources(json: &Json, settings: &mut BTreeSet<String>, functions: &mut Vec<Vec<String>>) {
    match json {
        Json::Object(map) => {
            if let Some(call) = map.get("FuncCall") {
                let name: Vec<String> = call
                    .get("funcname")
                    .and_then(Json::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|n| n.pointer("/node/String/sval").and_then(Json::as_str))
                    .map(str::to_string)
                    .collect();
                let args = call.get("args").and_then(Json::as_array);
                if name.last().map(String::as_str) == Some("current_setting") {
                    let first = args.and_then(|a| a.first());
                    let setting = first
                        .and_then(|a| {
                            a.pointer("/node/AConst/val/Sval/sval").or_else(|| {
                                a.pointer("/node/TypeCast/arg/node/AConst/val/Sval/sval")
                            })
                        })
                        .and_then(Json::as_str);
                    if let Some(s) = setting {
                        settings.insert(s.to_string());
                    }
                } else if args.is_none_or(|a| a.is_empty()) && !name.is_empty() {
                    functions.push(name);
                }
            }
            for v in map.values() {
                collect_sources(v, settings, functions);
            }
        }
        Json::Array(items) => {
            for v in items {
                collect_sources(v, settings, functions);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod null_tenant_tests {
    use super::{admits_null_tenant, tenant_sources};

    #[test]
    fn an_is_null_test_on_the_tenant_column_admits_shared_rows() {
        assert!(admits_null_tenant(
            "((tenant_id IS NULL) OR (tenant_id = ( SELECT auth.tenant() AS tenant)))",
            "tenant_id"
        ));
        assert!(!admits_null_tenant(
            "((tenant_id IS NOT NULL) AND (tenant_id = ( SELECT auth.tenant() AS tenant)))",
            "tenant_id"
        ));
        assert!(!admits_null_tenant("(owner_id IS NULL)", "tenant_id"));
    }

    #[test]
    fn tenant_columns_are_those_compared_with_a_context() {
        use super::columns_compared_with_context as columns;
        let one = |c: &str| std::collections::BTreeSet::from([c.to_string()]);
        assert_eq!(
            columns("(org_id = ( SELECT auth.org_id() AS org_id))"),
            one("org_id")
        );
        assert_eq!(
            columns("((account)::text = current_setting('app.account'::text, true))"),
            one("account")
        );
        assert!(
            columns("(org_id IN ( SELECT m.org_id FROM members m WHERE (m.user_id = auth.uid())))")
                .is_empty()
        );
        assert!(columns("(archived = false)").is_empty());
    }

    #[test]
    fn the_tenant_sources_are_what_the_column_is_compared_with() {
        let (settings, functions) = tenant_sources(
            "(org_id = ( SELECT auth.org() AS org)) AND (x = current_setting('other'::text))",
            "org_id",
        );
        assert!(settings.is_empty());
        assert_eq!(functions, vec![vec!["auth".to_string(), "org".to_string()]]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SETTINGS: &[&str] = &["app.current_tenant_id", "request.jwt.claims"];

    fn tenancy_parts() -> (Vec<String>, QualifiedName) {
        (
            SETTINGS.iter().map(|s| s.to_string()).collect(),
            QualifiedName::new("rls", "current_tenant_id"),
        )
    }

    fn unbound(text: &str) -> Vec<String> {
        let (settings, function) = tenancy_parts();
        let tenancy = Tenancy {
            column: "tenant_id",
            settings: &settings,
            function: Some(&function),
        };
        PolicyExpression::parse(text)
            .unwrap_or_else(|| panic!("parse {text}"))
            .opens_when_unbound(&tenancy)
    }

    fn unscoped(text: &str) -> Vec<String> {
        let (settings, function) = tenancy_parts();
        let tenancy = Tenancy {
            column: "tenant_id",
            settings: &settings,
            function: Some(&function),
        };
        PolicyExpression::parse(text)
            .unwrap_or_else(|| panic!("parse {text}"))
            .branches_not_scoped_to_tenant(&tenancy)
    }

    /// The deparser's text without the parts it adds or drops (parentheses,
    /// `pg_catalog.`, `::text` on literals).
    fn bare(sql: &str) -> String {
        sql.replace("::text", "")
            .replace("pg_catalog.", "")
            .replace(['(', ')', ' '], "")
    }

    /// rlsctl's own policy, and other correct shapes: nothing.
    const CLOSED: &[&str] = &[
        "(tenant_id = ( SELECT rls.current_tenant_id() AS current_tenant_id))",
        "(tenant_id = rls.current_tenant_id())",
        "(tenant_id = (current_setting('app.current_tenant_id'::text, true))::uuid)",
        "(tenant_id = (NULLIF(current_setting('app.current_tenant_id'::text, true), ''::text))::uuid)",
        "(tenant_id = (current_setting('app.current_tenant_id'::text))::uuid)",
        "((tenant_id = ( SELECT rls.current_tenant_id() AS current_tenant_id)) AND (NOT archived))",
        "(tenant_id IN ( SELECT rls.current_tenant_id() AS current_tenant_id))",
        "(tenant_id = ANY (ARRAY[( SELECT rls.current_tenant_id() AS current_tenant_id)]))",
        "((tenant_id)::text = ((current_setting('request.jwt.claims'::text, true))::json ->> 'tenant_id'::text))",
        "(tenant_id = ( SELECT m.tenant_id FROM memberships m WHERE (m.user_name = CURRENT_USER)))",
        "(EXISTS ( SELECT 1 FROM memberships m WHERE ((m.tenant_id = projects.tenant_id) AND (m.user_name = CURRENT_USER))))",
        // Another setting, not the tenant's: unknown, so no finding.
        "((current_setting('app.role'::text, true) IS NULL) AND (tenant_id = rls.current_tenant_id()))",
        // Raises when unbound rather than opening.
        "((current_setting('app.current_tenant_id'::text))::uuid IS NOT NULL AND (tenant_id = rls.current_tenant_id()))",
        "((tenant_id = rls.current_tenant_id()) OR false)",
        "((tenant_id = rls.current_tenant_id()) OR (tenant_id = '00000000-0000-0000-0000-000000000000'::uuid))",
        "true",
        "(NOT archived)",
    ];

    #[test]
    fn correct_policies_do_not_open_when_unbound() {
        for text in CLOSED {
            assert_eq!(unbound(text), Vec::<String>::new(), "{text}");
        }
    }

    #[test]
    fn branches_that_open_when_the_setting_is_unset_null_or_empty() {
        for (text, branch) in [
            (
                "((current_setting('app.current_tenant_id'::text, true) IS NULL) OR (tenant_id = (current_setting('app.current_tenant_id'::text, true))::uuid))",
                "current_setting('app.current_tenant_id'::text, true) IS NULL",
            ),
            (
                "(COALESCE(current_setting('app.current_tenant_id'::text, true), ''::text) = ''::text)",
                "COALESCE(current_setting('app.current_tenant_id'::text, true), ''::text) = ''::text",
            ),
            (
                "(((tenant_id)::text = current_setting('app.current_tenant_id'::text)) OR (current_setting('app.current_tenant_id'::text) = ''::text))",
                "current_setting('app.current_tenant_id'::text) = ''::text",
            ),
            (
                "((tenant_id = ( SELECT rls.current_tenant_id() AS current_tenant_id)) OR (rls.current_tenant_id() IS NULL))",
                "rls.current_tenant_id() IS NULL",
            ),
            (
                "((NULLIF(current_setting('app.current_tenant_id'::text, true), ''::text) IS NULL) OR (tenant_id = rls.current_tenant_id()))",
                "NULLIF(current_setting('app.current_tenant_id'::text, true), ''::text) IS NULL",
            ),
            (
                "(((current_setting('request.jwt.claims'::text, true))::json ->> 'tenant_id'::text) IS NULL OR ((tenant_id)::text = ((current_setting('request.jwt.claims'::text, true))::json ->> 'tenant_id'::text)))",
                "((current_setting('request.jwt.claims'::text, true))::json ->> 'tenant_id'::text) IS NULL",
            ),
            (
                "((NOT archived) AND ((tenant_id = rls.current_tenant_id()) OR (current_setting('app.current_tenant_id'::text, true) = ANY (ARRAY[''::text]))))",
                "current_setting('app.current_tenant_id'::text, true) = ANY (ARRAY[''::text])",
            ),
            (
                "((tenant_id = rls.current_tenant_id()) OR (length(current_setting('app.current_tenant_id'::text, true)) = 0))",
                "length(current_setting('app.current_tenant_id'::text, true)) = 0",
            ),
            (
                "((tenant_id = ( SELECT rls.current_tenant_id() AS current_tenant_id)) OR (NOT (current_setting('app.current_tenant_id'::text, true) IS DISTINCT FROM ''::text)))",
                "NOT current_setting('app.current_tenant_id'::text, true) IS DISTINCT FROM ''",
            ),
            (
                "((tenant_id = rls.current_tenant_id()) OR ((current_setting('app.current_tenant_id'::text, true) IS NULL) AND (NOT archived)))",
                "current_setting('app.current_tenant_id'::text, true) IS NULL AND NOT archived",
            ),
            (
                "((tenant_id = rls.current_tenant_id()) OR (NOT (current_setting('app.current_tenant_id'::text, true) IS NOT NULL)))",
                "NOT current_setting('app.current_tenant_id'::text, true) IS NOT NULL",
            ),
            (
                "((tenant_id = rls.current_tenant_id()) OR (btrim(COALESCE(current_setting('app.current_tenant_id'::text, true), ''::text)) = ''::text))",
                "btrim(COALESCE(current_setting('app.current_tenant_id'::text, true), ''::text)) = ''",
            ),
        ] {
            let found = unbound(text);
            assert_eq!(found.len(), 1, "{text}: {found:?}");
            assert!(
                bare(&found[0]).contains(&bare(branch)),
                "{text}: expected {branch}, got {found:?}"
            );
        }
    }

    #[test]
    fn a_setting_compared_with_the_tenant_column_is_the_tenant_setting_whatever_its_name() {
        let text = "((current_setting('app.tenant'::text, true) IS NULL) OR (tenant_id = (current_setting('app.tenant'::text, true))::uuid))";
        assert_eq!(unbound(text).len(), 1);
        let text = "((app.tenant() IS NULL) OR (tenant_id = app.tenant()))";
        assert_eq!(unbound(text), vec!["app.tenant() IS NULL".to_string()]);
    }

    #[test]
    fn correct_policies_are_scoped_to_the_tenant() {
        for text in CLOSED.iter().filter(|t| t.contains("tenant_id")) {
            assert_eq!(unscoped(text), Vec::<String>::new(), "{text}");
        }
        // Open when unbound, but closed for a bound tenant: the other check's.
        assert_eq!(
            unscoped(
                "((tenant_id = rls.current_tenant_id()) OR (rls.current_tenant_id() IS NULL))"
            ),
            Vec::<String>::new()
        );
    }

    #[test]
    fn or_branches_that_ignore_the_tenant() {
        for (text, branch) in [
            (
                "((tenant_id = ( SELECT rls.current_tenant_id() AS current_tenant_id)) OR true)",
                "true",
            ),
            (
                "((tenant_id = ( SELECT rls.current_tenant_id() AS current_tenant_id)) OR (other IS NOT NULL))",
                "other IS NOT NULL",
            ),
            (
                "((tenant_id = rls.current_tenant_id()) OR (tenant_id IS NOT NULL))",
                "tenant_id IS NOT NULL",
            ),
            (
                "((NOT archived) AND ((tenant_id = rls.current_tenant_id()) OR public))",
                "public",
            ),
            (
                "((tenant_id = rls.current_tenant_id()) OR ( SELECT app.is_staff() AS is_staff))",
                "(SELECT app.is_staff() AS is_staff)",
            ),
            (
                "((tenant_id = rls.current_tenant_id()) OR (current_setting('app.current_tenant_id'::text, true) <> ''::text))",
                "current_setting('app.current_tenant_id'::text, true) <> ''",
            ),
        ] {
            let found = unscoped(text);
            assert_eq!(found.len(), 1, "{text}: {found:?}");
            assert!(
                bare(&found[0]).contains(&bare(branch)),
                "{text}: expected {branch}, got {found:?}"
            );
        }
    }

    #[test]
    fn each_distinct_expression_is_analysed_once() {
        let (settings, function) = tenancy_parts();
        let tenancy = Tenancy {
            column: "tenant_id",
            settings: &settings,
            function: Some(&function),
        };
        let analyses = Analyses::default();
        let generated = "(tenant_id = ( SELECT rls.current_tenant_id() AS current_tenant_id))";
        let first = analyses.of(generated, &tenancy);
        assert!(Rc::ptr_eq(&first, &analyses.of(generated, &tenancy)));
        assert!(first.opens_when_unbound.is_empty() && first.not_scoped_to_tenant.is_empty());
        let open = analyses.of("((tenant_id = rls.current_tenant_id()) OR true)", &tenancy);
        assert_eq!(open.not_scoped_to_tenant, vec!["true".to_string()]);
    }

    #[test]
    fn truth_tables_are_sql_three_valued_logic() {
        assert_eq!(or(T, ERR), T);
        assert_eq!(or(F, NULL), NULL);
        assert_eq!(and(F, ERR), F);
        assert_eq!(and(T, NULL), NULL);
        assert_eq!(not(T | NULL), F | NULL);
        assert_eq!(or(ANY, F), ANY);
    }
}
