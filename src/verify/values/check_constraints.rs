//! CHECK constraints and partition constraints, read from the server's own
//! deparse with PostgreSQL's grammar, reduced to what a made-up value has to
//! respect: per-column equalities, IN lists, exclusions, bounds and lengths,
//! combined with AND, OR and NOT. Whatever else an expression says is taken as
//! satisfiable; the server has the last word when the row is inserted.

use pg_query::protobuf::{self, node::Node as N};
use pg_query::protobuf::{AExprKind, BoolExprType, NullTestType};

/// A constant as written in the expression: its text and whether it was a number.
#[derive(Debug, Clone, PartialEq)]
pub struct Literal {
    pub text: String,
    pub numeric: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    Below,
    AtMost,
    Above,
    AtLeast,
}

impl Bound {
    fn negated(self) -> Bound {
        match self {
            Bound::Below => Bound::AtLeast,
            Bound::AtMost => Bound::Above,
            Bound::Above => Bound::AtMost,
            Bound::AtLeast => Bound::Below,
        }
    }

    /// `c OP col` read as `col OP' c`.
    fn flipped(self) -> Bound {
        match self {
            Bound::Below => Bound::Above,
            Bound::AtMost => Bound::AtLeast,
            Bound::Above => Bound::Below,
            Bound::AtLeast => Bound::AtMost,
        }
    }
}

/// What one column must satisfy.
#[derive(Debug, Clone, PartialEq)]
pub enum Test {
    /// One of these values (`=`, `IN`, `= ANY (ARRAY[…])`).
    OneOf(Vec<Literal>),
    /// None of these values (`<>`, `NOT IN`, `<> ALL (…)`).
    NoneOf(Vec<Literal>),
    Compare(Bound, Literal),
    /// `length(col)` bounded.
    Length(Bound, usize),
    NotNull,
    IsNull,
    /// Named by a condition rlsctl cannot solve (a hash partition's
    /// `satisfies_hash_partition`): it needs a value of its own, and the
    /// server decides.
    Named,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Atom {
    pub column: String,
    pub test: Test,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Formula {
    And(Vec<Formula>),
    Or(Vec<Formula>),
    Atom(Atom),
    /// Two columns compared (`ends_at > starts_at`): made-up values are
    /// ordered to fit.
    Relation(String, Bound, String),
    /// Nothing rlsctl can use: assumed satisfiable.
    Anything,
}

impl Formula {
    /// Parses an expression as `pg_get_expr` prints it. `value_column` names
    /// the column a domain's `VALUE` stands for.
    pub fn parse(text: &str, value_column: Option<&str>) -> Formula {
        let Ok(parsed) = pg_query::parse(
            &format!("SELECT {text}"),
            pg_query::ParserOptions::default(),
        ) else {
            return Formula::Anything;
        };
        let root = parsed.protobuf.stmts.first().and_then(|s| {
            let N::SelectStmt(select) = s.stmt.as_ref()?.node.as_ref()? else {
                return None;
            };
            let N::ResTarget(target) = select.target_list.first()?.node.as_ref()? else {
                return None;
            };
            target.val.as_deref().cloned()
        });
        match root {
            Some(node) => Reader { value_column }.formula(&node, false),
            None => Formula::Anything,
        }
    }

    /// The columns this formula constrains.
    pub fn columns(&self, out: &mut Vec<String>) {
        match self {
            Formula::And(fs) | Formula::Or(fs) => fs.iter().for_each(|f| f.columns(out)),
            Formula::Atom(a) => {
                if !out.contains(&a.column) {
                    out.push(a.column.clone());
                }
            }
            Formula::Relation(..) | Formula::Anything => {}
        }
    }

    /// The tests on `column` that hold whatever else is chosen (under ANDs only).
    pub fn conjunctive_tests(&self, column: &str) -> Vec<Test> {
        fn collect(f: &Formula, column: &str, out: &mut Vec<Test>) {
            match f {
                Formula::And(parts) => parts.iter().for_each(|p| collect(p, column, out)),
                Formula::Atom(a) if a.column == column => out.push(a.test.clone()),
                _ => {}
            }
        }
        let mut out = Vec::new();
        collect(self, column, &mut out);
        out
    }

    /// Column comparisons that hold whatever else is chosen (under ANDs only).
    pub fn relations<'f>(&'f self, out: &mut Vec<(&'f str, Bound, &'f str)>) {
        match self {
            Formula::And(parts) => parts.iter().for_each(|p| p.relations(out)),
            Formula::Relation(a, b, c) => out.push((a, *b, c)),
            _ => {}
        }
    }
}

struct Reader<'a> {
    value_column: Option<&'a str>,
}

impl Reader<'_> {
    fn formula(&self, node: &protobuf::Node, negated: bool) -> Formula {
        match node.node.as_ref() {
            Some(N::BoolExpr(b)) => {
                let kind = BoolExprType::try_from(b.boolop).unwrap_or(BoolExprType::Undefined);
                match kind {
                    BoolExprType::NotExpr => match b.args.first() {
                        Some(arg) => self.formula(arg, !negated),
                        None => Formula::Anything,
                    },
                    BoolExprType::AndExpr | BoolExprType::OrExpr => {
                        let parts = b.args.iter().map(|a| self.formula(a, negated)).collect();
                        // De Morgan: NOT (a AND b) is NOT a OR NOT b.
                        if (kind == BoolExprType::AndExpr) != negated {
                            Formula::And(parts)
                        } else {
                            Formula::Or(parts)
                        }
                    }
                    BoolExprType::Undefined => Formula::Anything,
                }
            }
            Some(N::NullTest(t)) => {
                let Some(column) = t.arg.as_deref().and_then(|a| self.column(a)) else {
                    return Formula::Anything;
                };
                let is_null = t.nulltesttype == NullTestType::IsNull as i32;
                atom(
                    column,
                    if is_null != negated {
                        Test::IsNull
                    } else {
                        Test::NotNull
                    },
                )
            }
            Some(N::AExpr(e)) => self.comparison(e, negated),
            // A boolean column on its own: `CHECK (active)`, `NOT archived`.
            Some(N::ColumnRef(_)) => match self.column(node) {
                Some(column) => atom(
                    column,
                    Test::OneOf(vec![Literal {
                        text: (!negated).to_string(),
                        numeric: false,
                    }]),
                ),
                None => Formula::Anything,
            },
            Some(N::FuncCall(call)) if function_name(call) == "satisfies_hash_partition" => {
                // (parent oid, modulus, remainder, key columns…)
                Formula::And(
                    call.args
                        .iter()
                        .skip(3)
                        .filter_map(|a| self.column(a))
                        .map(|c| atom(c, Test::Named))
                        .collect(),
                )
            }
            _ => Formula::Anything,
        }
    }

    fn comparison(&self, e: &protobuf::AExpr, negated: bool) -> Formula {
        let kind = AExprKind::try_from(e.kind).unwrap_or(AExprKind::Undefined);
        let op = operator(&e.name);
        let (Some(left), Some(right)) = (e.lexpr.as_deref(), e.rexpr.as_deref()) else {
            return Formula::Anything;
        };
        match kind {
            AExprKind::AexprOp => {
                if let (Some(length), Some(n)) = (self.length_of(left), literal(right)) {
                    let Ok(n) = n.text.parse::<usize>() else {
                        return Formula::Anything;
                    };
                    return match bound(&op) {
                        Some(b) => atom(
                            length,
                            Test::Length(if negated { b.negated() } else { b }, n),
                        ),
                        // `length(code) = 3`
                        None if op == "=" && !negated => Formula::And(vec![
                            atom(length.clone(), Test::Length(Bound::AtLeast, n)),
                            atom(length, Test::Length(Bound::AtMost, n)),
                        ]),
                        None => Formula::Anything,
                    };
                }
                let (column, value, flipped) = match (self.column(left), self.column(right)) {
                    (Some(c), None) => (c, literal(right), false),
                    (None, Some(c)) => (c, literal(left), true),
                    (Some(a), Some(c)) => {
                        return match bound(&op) {
                            Some(b) if negated => Formula::Relation(a, b.negated(), c),
                            Some(b) => Formula::Relation(a, b, c),
                            None => Formula::Anything,
                        };
                    }
                    _ => return Formula::Anything,
                };
                let Some(value) = value else {
                    return Formula::Anything;
                };
                let equal = match op.as_str() {
                    "=" => Some(true),
                    "<>" | "!=" => Some(false),
                    _ => None,
                };
                if let Some(equal) = equal {
                    let list = vec![value];
                    return atom(
                        column,
                        if equal != negated {
                            Test::OneOf(list)
                        } else {
                            Test::NoneOf(list)
                        },
                    );
                }
                match bound(&op) {
                    Some(mut b) => {
                        if flipped {
                            b = b.flipped();
                        }
                        if negated {
                            b = b.negated();
                        }
                        atom(column, Test::Compare(b, value))
                    }
                    None => Formula::Anything,
                }
            }
            AExprKind::AexprOpAny | AExprKind::AexprOpAll | AExprKind::AexprIn => {
                let Some(column) = self.column(left) else {
                    return Formula::Anything;
                };
                let Some(list) = literal_list(right) else {
                    return Formula::Anything;
                };
                let membership = match (kind, op.as_str()) {
                    (AExprKind::AexprOpAny | AExprKind::AexprIn, "=") => true,
                    (AExprKind::AexprOpAll | AExprKind::AexprIn, "<>") => false,
                    _ => return Formula::Anything,
                };
                atom(
                    column,
                    if membership != negated {
                        Test::OneOf(list)
                    } else {
                        Test::NoneOf(list)
                    },
                )
            }
            AExprKind::AexprBetween | AExprKind::AexprNotBetween => {
                let (Some(column), Some([low, high])) = (
                    self.column(left),
                    literal_list(right).and_then(|l| <[Literal; 2]>::try_from(l).ok()),
                ) else {
                    return Formula::Anything;
                };
                let inside = (kind == AExprKind::AexprBetween) != negated;
                let low = atom(column.clone(), Test::Compare(Bound::AtLeast, low));
                let high = atom(column, Test::Compare(Bound::AtMost, high));
                if inside {
                    Formula::And(vec![low, high])
                } else {
                    // Outside: below the low end or above the high end.
                    Formula::Or(vec![negate_atom(low), negate_atom(high)])
                }
            }
            _ => Formula::Anything,
        }
    }

    /// A column, through casts; `VALUE` in a domain's check.
    fn column(&self, node: &protobuf::Node) -> Option<String> {
        match node.node.as_ref()? {
            N::TypeCast(c) => self.column(c.arg.as_deref()?),
            N::ColumnRef(r) => {
                let [field] = r.fields.as_slice() else {
                    return None;
                };
                let Some(N::String(s)) = field.node.as_ref() else {
                    return None;
                };
                match self.value_column {
                    Some(column) if s.sval == "value" => Some(column.to_string()),
                    Some(_) => None,
                    None => Some(s.sval.clone()),
                }
            }
            _ => None,
        }
    }

    /// `length(col)`, `char_length(col)`, `character_length(col)`.
    fn length_of(&self, node: &protobuf::Node) -> Option<String> {
        match node.node.as_ref()? {
            N::TypeCast(c) => self.length_of(c.arg.as_deref()?),
            N::FuncCall(call)
                if matches!(
                    function_name(call).as_str(),
                    "length" | "char_length" | "character_length"
                ) && call.args.len() == 1 =>
            {
                self.column(&call.args[0])
            }
            _ => None,
        }
    }
}

fn atom(column: String, test: Test) -> Formula {
    Formula::Atom(Atom { column, test })
}

fn negate_atom(formula: Formula) -> Formula {
    match formula {
        Formula::Atom(Atom {
            column,
            test: Test::Compare(b, v),
        }) => atom(column, Test::Compare(b.negated(), v)),
        other => other,
    }
}

fn function_name(call: &protobuf::FuncCall) -> String {
    match call.funcname.last().and_then(|n| n.node.as_ref()) {
        Some(N::String(s)) => s.sval.clone(),
        _ => String::new(),
    }
}

fn operator(name: &[protobuf::Node]) -> String {
    match name.last().and_then(|n| n.node.as_ref()) {
        Some(N::String(s)) => s.sval.clone(),
        _ => String::new(),
    }
}

fn bound(op: &str) -> Option<Bound> {
    Some(match op {
        "<" => Bound::Below,
        "<=" => Bound::AtMost,
        ">" => Bound::Above,
        ">=" => Bound::AtLeast,
        _ => return None,
    })
}

/// A constant, through casts and a unary minus.
fn literal(node: &protobuf::Node) -> Option<Literal> {
    use protobuf::a_const::Val;
    match node.node.as_ref()? {
        N::TypeCast(c) => literal(c.arg.as_deref()?),
        N::AConst(c) if !c.isnull => match c.val.as_ref()? {
            Val::Ival(i) => Some(Literal {
                text: i.ival.to_string(),
                numeric: true,
            }),
            Val::Fval(f) => Some(Literal {
                text: f.fval.clone(),
                numeric: true,
            }),
            Val::Sval(s) => Some(Literal {
                text: s.sval.clone(),
                numeric: false,
            }),
            Val::Boolval(b) => Some(Literal {
                text: b.boolval.to_string(),
                numeric: false,
            }),
            Val::Bsval(_) => None,
        },
        N::AExpr(e) if operator(&e.name) == "-" && e.lexpr.is_none() => {
            let inner = literal(e.rexpr.as_deref()?)?;
            inner.numeric.then(|| Literal {
                text: format!("-{}", inner.text),
                numeric: true,
            })
        }
        _ => None,
    }
}

/// `ARRAY[…]`, `(a, b)` or `'{a,b}'`, through casts.
fn literal_list(node: &protobuf::Node) -> Option<Vec<Literal>> {
    match node.node.as_ref()? {
        N::TypeCast(c) => {
            let inner = c.arg.as_deref()?;
            if let Some(N::AConst(_)) = inner.node.as_ref() {
                let text = literal(inner)?.text;
                return array_text(&text);
            }
            literal_list(inner)
        }
        N::AArrayExpr(a) => a.elements.iter().map(literal).collect(),
        N::List(l) => l.items.iter().map(literal).collect(),
        _ => None,
    }
}

/// The elements of a simple array literal `{a,b,"c d"}`.
fn array_text(text: &str) -> Option<Vec<Literal>> {
    let inner = text.strip_prefix('{')?.strip_suffix('}')?;
    if inner.is_empty() {
        return Some(Vec::new());
    }
    Some(
        inner
            .split(',')
            .map(|e| Literal {
                text: e.trim().trim_matches('"').to_string(),
                numeric: false,
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Literal {
        Literal {
            text: s.into(),
            numeric: false,
        }
    }

    fn number(s: &str) -> Literal {
        Literal {
            text: s.into(),
            numeric: true,
        }
    }

    #[test]
    fn an_in_list_as_the_server_deparses_it_is_a_choice_of_values() {
        let f = Formula::parse("(direction = ANY (ARRAY['in'::text, 'out'::text]))", None);
        assert_eq!(
            f,
            atom(
                "direction".into(),
                Test::OneOf(vec![text("in"), text("out")])
            )
        );
        let varchar = Formula::parse(
            "((direction)::text = ANY ((ARRAY['in'::character varying, 'out'::character varying])::text[]))",
            None,
        );
        assert_eq!(f, varchar);
    }

    #[test]
    fn a_range_and_a_reversed_comparison_are_bounds_on_the_column() {
        let f = Formula::parse("((amount > (0)::numeric) AND (100 >= amount))", None);
        assert_eq!(
            f,
            Formula::And(vec![
                atom("amount".into(), Test::Compare(Bound::Above, number("0"))),
                atom("amount".into(), Test::Compare(Bound::AtMost, number("100"))),
            ])
        );
        let negative = Formula::parse("(delta >= '-5'::integer)", None);
        assert_eq!(
            negative,
            atom("delta".into(), Test::Compare(Bound::AtLeast, text("-5")))
        );
    }

    #[test]
    fn a_default_partition_constraint_negates_the_other_partitions() {
        let f = Formula::parse(
            "(NOT ((kind IS NOT NULL) AND (kind = ANY (ARRAY['a'::text, 'b'::text]))))",
            None,
        );
        assert_eq!(
            f,
            Formula::Or(vec![
                atom("kind".into(), Test::IsNull),
                atom("kind".into(), Test::NoneOf(vec![text("a"), text("b")])),
            ])
        );
    }

    #[test]
    fn a_domain_check_names_value_as_the_column() {
        let f = Formula::parse("(VALUE > 0)", Some("qty"));
        assert_eq!(
            f,
            atom("qty".into(), Test::Compare(Bound::Above, number("0")))
        );
        let f = Formula::parse("(char_length(VALUE) <= 3)", Some("code"));
        assert_eq!(f, atom("code".into(), Test::Length(Bound::AtMost, 3)));
    }

    #[test]
    fn a_boolean_column_and_an_exact_length_are_read() {
        assert_eq!(
            Formula::parse("(NOT archived)", None),
            atom("archived".into(), Test::OneOf(vec![text("false")]))
        );
        assert_eq!(
            Formula::parse("(char_length(code) = 3)", None),
            Formula::And(vec![
                atom("code".into(), Test::Length(Bound::AtLeast, 3)),
                atom("code".into(), Test::Length(Bound::AtMost, 3)),
            ])
        );
    }

    #[test]
    fn a_comparison_of_two_columns_is_a_relation() {
        let f = Formula::parse("(ends_at > starts_at)", None);
        assert_eq!(
            f,
            Formula::Relation("ends_at".into(), Bound::Above, "starts_at".into())
        );
    }

    #[test]
    fn a_hash_partition_names_its_key_columns() {
        let f = Formula::parse("satisfies_hash_partition('16384'::oid, 4, 1, id)", None);
        assert_eq!(f, Formula::And(vec![atom("id".into(), Test::Named)]));
    }
}
