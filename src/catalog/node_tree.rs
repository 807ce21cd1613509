//! Which stored policy expressions print alike, told without printing them.
//!
//! PostgreSQL stores a policy's USING and WITH CHECK as a parse tree
//! (`pg_node_tree`, e.g. `{OPEXPR :opno 2972 … :args ({VAR :varno 1
//! :varattno 2 …} …) :location 38}`), and `pg_get_expr` prints it back as
//! SQL. Printing costs some 20 µs a tree on the fresh connection every rlsctl
//! run starts with, and a spec puts the same few expressions on thousands of
//! tables. The tree's text, read as is, costs nothing to fetch; what makes
//! two tables' trees differ when their printed forms agree is:
//!
//! - `:location`, `:stmt_location`, `:stmt_len`: where the text was typed,
//!   which printing ignores;
//! - a column of the policy's own table is a number (`:varattno`, and
//!   `:varattnosyn` from PostgreSQL 13), while printing shows its name:
//!   `tenant_id` may be column 2 of one table and column 4 of another.
//!
//! A [`Template`] drops the first and turns each such column into a
//! placeholder, so the caller can key the tree by the template plus the
//! names and types of those columns, and print one tree per key.
//!
//! The printed form names the table itself in three cases: a whole-row
//! reference, a column of the table used inside a sub-select (printed
//! `orders.tenant_id`), and any sub-select reading a table (whose alias is
//! chosen so as not to clash with the policy table's name). The template
//! says so (`names_table`) and the key then carries the table's name, the
//! only part of the table printing reads besides its columns.
//!
//! Everything else in the tree (function, operator, type and collation oids,
//! type modifiers, constants, the tables a sub-select reads by oid) is kept
//! verbatim, so two trees that print differently never share a key; two
//! trees that print alike may still get two keys, which only costs a print.

/// A stored expression without what ties it to the text it was typed as and
/// to the positions of its table's columns.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Template {
    /// The tree with location fields left out and each column of the
    /// policy's table written `$N` (`N` indexing `columns`).
    pub text: String,
    /// The attribute numbers the placeholders stand for.
    pub columns: Vec<i16>,
    /// Whether the printed form can contain the table's name.
    pub names_table: bool,
}

/// The template of `tree` (a `pg_node_tree` as text), or `None` when the
/// tree holds something this reader does not expect: the caller then prints
/// that policy on its own.
pub fn template(tree: &str) -> Option<Template> {
    let mut tokens = Tokens { text: tree, at: 0 };
    let mut out = Template {
        text: String::with_capacity(tree.len()),
        columns: Vec::new(),
        names_table: false,
    };
    // For each open `{`: whether it opened a QUERY. Column numbers of a Var
    // whose `varlevelsup` equals the number of enclosing queries are the
    // policy table's (the only range-table entry at the top level).
    let mut open: Vec<bool> = Vec::new();
    let mut depth = 0i64;
    while let Some(token) = tokens.next() {
        match token {
            "{" => {
                let node = tokens.next()?;
                if node == "VAR" {
                    var(&mut tokens, depth, &mut out)?;
                    continue;
                }
                // A sub-select reading a table: PostgreSQL 13 writes RTE,
                // later majors RANGETBLENTRY.
                if node == "RTE" || node == "RANGETBLENTRY" {
                    out.names_table = true;
                }
                let query = node == "QUERY";
                depth += i64::from(query);
                open.push(query);
                word(&mut out.text, "{");
                word(&mut out.text, node);
            }
            "}" => {
                depth -= i64::from(open.pop()?);
                word(&mut out.text, "}");
            }
            ":location" | ":stmt_location" | ":stmt_len" if tokens.integer_follows() => {
                tokens.next();
            }
            _ => word(&mut out.text, token),
        }
    }
    open.is_empty().then_some(out)
}

/// One `{VAR …}`, its opening already read: written with location left out
/// and the policy table's column numbers replaced.
fn var(tokens: &mut Tokens, depth: i64, out: &mut Template) -> Option<()> {
    // A Var's fields are numbers and one bitmap (`:varnullingrels (b)`,
    // PostgreSQL 16+); no nested node.
    let mut fields: Vec<(&str, Vec<&str>)> = Vec::new();
    loop {
        let token = tokens.next()?;
        if token == "}" {
            break;
        }
        if token.starts_with(':') {
            fields.push((token, Vec::new()));
        } else {
            fields.last_mut()?.1.push(token);
        }
    }
    let number = |name: &str| -> Option<i64> {
        match fields
            .iter()
            .find(|(field, _)| *field == name)?
            .1
            .as_slice()
        {
            [value] => value.parse().ok(),
            _ => None,
        }
    };
    let own_table = number(":varlevelsup")? == depth;
    if own_table {
        // The top level's range table holds the policy's table alone.
        if number(":varno")? != 1 || number(":varnosyn").is_some_and(|n| n != 1) {
            return None;
        }
        if depth > 0 {
            out.names_table = true;
        }
    }
    word(&mut out.text, "{");
    word(&mut out.text, "VAR");
    for (field, values) in &fields {
        if *field == ":location" {
            continue;
        }
        word(&mut out.text, field);
        let attno = matches!(*field, ":varattno" | ":varattnosyn")
            .then(|| number(field))
            .flatten();
        match attno {
            Some(attno) if own_table && attno > 0 => {
                let attno = i16::try_from(attno).ok()?;
                let index = match out.columns.iter().position(|&c| c == attno) {
                    Some(index) => index,
                    None => {
                        out.columns.push(attno);
                        out.columns.len() - 1
                    }
                };
                word(&mut out.text, &format!("${index}"));
            }
            _ => {
                if own_table && attno == Some(0) {
                    out.names_table = true;
                }
                for value in values {
                    word(&mut out.text, value);
                }
            }
        }
    }
    word(&mut out.text, "}");
    Some(())
}

fn word(text: &mut String, token: &str) {
    if !text.is_empty() {
        text.push(' ');
    }
    text.push_str(token);
}

/// The tokens of a node tree as PostgreSQL's `pg_strtok` reads them:
/// separated by white space, `(`, `)`, `{` and `}` standing alone, a
/// backslash escaping the next character.
struct Tokens<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Tokens<'a> {
    fn next(&mut self) -> Option<&'a str> {
        let bytes = self.text.as_bytes();
        while self.at < bytes.len() && bytes[self.at].is_ascii_whitespace() {
            self.at += 1;
        }
        let start = self.at;
        match bytes.get(start)? {
            b'(' | b')' | b'{' | b'}' => self.at += 1,
            _ => {
                while let Some(&b) = bytes.get(self.at) {
                    match b {
                        b'\\' => self.at += 2,
                        b'(' | b')' | b'{' | b'}' => break,
                        _ if b.is_ascii_whitespace() => break,
                        _ => self.at += 1,
                    }
                }
                // An escape can step past the end, or into a multi-byte
                // character; the loop then ends at an ASCII byte or the end.
                self.at = self.at.min(bytes.len());
            }
        }
        self.text.get(start..self.at)
    }

    fn integer_follows(&self) -> bool {
        let mut ahead = Tokens {
            text: self.text,
            at: self.at,
        };
        ahead.next().is_some_and(|t| t.parse::<i64>().is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // As PostgreSQL 15 stores `tenant_id = (SELECT rls.current_tenant_id())`
    // with tenant_id as column 2 (the sub-select shortened).
    const TENANT_ON_2: &str = "{OPEXPR :opno 2972 :opfuncid 2956 :opresulttype 16 :opretset false :opcollid 0 :inputcollid 0 :args ({VAR :varno 1 :varattno 2 :vartype 2950 :vartypmod -1 :varcollid 0 :varlevelsup 0 :varnosyn 1 :varattnosyn 2 :location 28} {SUBLINK :subLinkType 4 :subLinkId 0 :testexpr <> :operName <> :subselect {QUERY :commandType 1 :rtable <> :targetList ({TARGETENTRY :expr {FUNCEXPR :funcid 16385 :funcresulttype 2950 :args <> :location 48} :resno 1 :resname current_tenant_id}) :stmt_location 0 :stmt_len 0} :location 40}) :location 38}";

    #[test]
    fn the_same_expression_on_columns_at_other_positions_gives_one_template() {
        let on_2 = template(TENANT_ON_2).unwrap();
        let on_4 = template(
            &TENANT_ON_2
                .replace(":varattno 2", ":varattno 4")
                .replace(":varattnosyn 2", ":varattnosyn 4")
                .replace(":location 28", ":location 31"),
        )
        .unwrap();
        assert_eq!(on_2.text, on_4.text);
        assert_eq!((on_2.columns, on_4.columns), (vec![2], vec![4]));
        assert!(!on_2.names_table);
        assert!(!on_2.text.contains("location"), "{}", on_2.text);
        assert!(on_2.text.contains(":varattno $0 "), "{}", on_2.text);
    }

    #[test]
    fn what_printing_shows_stays_in_the_template() {
        let base = template(TENANT_ON_2).unwrap();
        for changed in [
            TENANT_ON_2.replace(":funcid 16385", ":funcid 16386"),
            TENANT_ON_2.replace(":opno 2972", ":opno 2973"),
            TENANT_ON_2.replace(":vartypmod -1", ":vartypmod 4"),
            TENANT_ON_2.replace(":resname current_tenant_id", ":resname t"),
            TENANT_ON_2.replace(":subLinkType 4", ":subLinkType 0"),
        ] {
            assert_ne!(template(&changed).unwrap().text, base.text, "{changed}");
        }
    }

    #[test]
    fn two_columns_of_the_table_are_told_apart() {
        let tree = "{OPEXPR :opno 96 :args ({VAR :varno 1 :varattno 3 :varlevelsup 0 :varnosyn 1 :varattnosyn 3 :location 0} {VAR :varno 1 :varattno 1 :varlevelsup 0 :varnosyn 1 :varattnosyn 1 :location 9}) :location 7}";
        let t = template(tree).unwrap();
        assert_eq!(t.columns, vec![3, 1]);
        let swapped = template(
            &tree
                .replace(":varattno 3 ", ":varattno 1 ")
                .replace(":varattnosyn 3 ", ":varattnosyn 1 "),
        )
        .unwrap();
        assert_ne!(swapped.text, t.text, "a = b is not a = a");
    }

    #[test]
    fn a_sub_select_reading_a_table_or_a_whole_row_names_the_table() {
        // EXISTS (SELECT 1 FROM m WHERE m.member_tenant = tenant_id), PostgreSQL 13.
        let exists = "{SUBLINK :subLinkType 0 :subselect {QUERY :commandType 1 :rtable ({RTE :alias <> :eref {ALIAS :aliasname m :colnames (\"member_tenant\")} :rtekind 0 :relid 16395}) :jointree {FROMEXPR :fromlist ({RANGETBLREF :rtindex 1}) :quals {OPEXPR :opno 2972 :args ({VAR :varno 1 :varattno 1 :varlevelsup 0 :varnosyn 1 :varattnosyn 1 :location 58} {VAR :varno 1 :varattno 2 :varlevelsup 1 :varnosyn 1 :varattnosyn 2 :location 76}) :location 74}} :stmt_location 0 :stmt_len 0} :location 28}";
        let t = template(exists).unwrap();
        assert!(t.names_table);
        // The inner table's column 1 stays a number; the outer tenant_id is a placeholder.
        assert!(t.text.contains(":varattno 1 :varlevelsup 0"), "{}", t.text);
        assert!(t.text.contains(":varattno $0 :varlevelsup 1"), "{}", t.text);
        assert_eq!(t.columns, vec![2]);

        let whole_row = "{FUNCEXPR :funcid 1 :args ({VAR :varno 1 :varattno 0 :vartype 16390 :varlevelsup 0 :location 3}) :location 0}";
        assert!(template(whole_row).unwrap().names_table);
        let plain = "{BOOLEXPR :boolop not :args ({VAR :varno 1 :varattno 3 :vartype 16 :varlevelsup 0 :varnosyn 1 :varattnosyn 3 :location 32}) :location 28}";
        assert!(!template(plain).unwrap().names_table);
    }

    #[test]
    fn postgresql_16_bitmaps_and_escaped_strings_are_read_whole() {
        let tree = "{OPEXPR :args ({VAR :varno 1 :varattno 2 :vartype 25 :varnullingrels (b) :varlevelsup 0 :varreturningtype 0 :varnosyn 1 :varattnosyn 2 :location -1} {CONST :consttype 25 :constvalue 9 [ 36 0 0 0 97 32 98 125 41 ]}) :location -1}";
        let t = template(tree).unwrap();
        assert!(
            t.text.contains(":varnullingrels ( b ) :varlevelsup 0"),
            "{}",
            t.text
        );
        assert_eq!(t.columns, vec![2]);
        let escaped = template("{TARGETENTRY :resname a\\ \\}b :resno 1}").unwrap();
        assert_eq!(escaped.text, "{ TARGETENTRY :resname a\\ \\}b :resno 1 }");
    }

    #[test]
    fn a_tree_this_reader_does_not_expect_gets_no_template() {
        assert_eq!(template("{OPEXPR :args ({VAR :varno 1"), None);
        assert_eq!(template("{VAR :varno 2 :varattno 1 :varlevelsup 0}"), None);
        assert_eq!(template("}"), None);
    }
}
