//! Statements and settlements as CSV (one row per line in the same
//! columns, then total rows), written by the `csv` crate so quoting follows
//! RFC 4180 whatever a rep's name or an explanation holds.

use super::settlements::status_name;
use crate::domain::settlement::{Settlement, SettlementLine, SettlementStatus, Statement};

/// The CSV columns of statements and settlements (one row per line).
const HEADER: [&str; 13] = [
    "settlement",
    "status",
    "rep",
    "rule",
    "subject_kind",
    "subject",
    "subject_period",
    "amount",
    "currency",
    "flag",
    "policy",
    "policy_version",
    "explanation",
];

/// Rows into a CSV text.
struct Rows(csv::Writer<Vec<u8>>);

impl Rows {
    fn new() -> Self {
        let mut rows = Rows(csv::Writer::from_writer(Vec::new()));
        rows.push(HEADER);
        rows
    }

    fn push<I, F>(&mut self, fields: I)
    where
        I: IntoIterator<Item = F>,
        F: AsRef<[u8]>,
    {
        // Writing into memory cannot fail.
        self.0.write_record(fields).expect("CSV into memory");
    }

    /// One line's row.
    fn line(&mut self, settlement: &str, status: SettlementStatus, l: &SettlementLine) {
        self.push([
            settlement,
            status_name(status),
            &l.rep,
            &l.rule,
            &l.subject_kind,
            &l.subject,
            &l.subject_period,
            &l.amount.to_string(),
            &l.currency,
            l.flag.as_deref().unwrap_or_default(),
            &l.policy.name,
            &l.policy.version.to_string(),
            &l.explanation,
        ]);
    }

    /// A total row: `rep` empty for the settlement's own.
    fn total(&mut self, status: &str, rep: &str, period: &str, total: &str) {
        self.push([
            "total", status, rep, "", "", "", period, total, "CNY", "", "", "", "",
        ]);
    }

    fn text(self) -> String {
        let bytes = self.0.into_inner().expect("CSV into memory");
        String::from_utf8(bytes).expect("CSV of UTF-8 fields")
    }
}

/// A statement as CSV: one row per line, then one row per status total.
pub fn statement_csv(s: &Statement) -> String {
    let mut rows = Rows::new();
    for l in &s.lines {
        rows.line(&l.settlement, l.status, &l.line);
    }
    for (status, total) in &s.totals {
        rows.total(status, &s.rep, &s.period, &total.to_string());
    }
    rows.text()
}

/// A whole settlement as CSV, in the statements' columns: one row per line,
/// then one total row per rep and one for the settlement (rep left empty).
pub fn settlement_csv(st: &Settlement) -> String {
    let mut rows = Rows::new();
    for l in &st.lines {
        rows.line(&st.id, st.status, l);
    }
    let status = status_name(st.status);
    for t in &st.totals {
        rows.total(status, &t.rep, &st.period, &t.total.to_string());
    }
    rows.total(status, "", &st.period, &st.total.to_string());
    rows.text()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_with_separators_quotes_or_newlines_are_quoted_and_others_not() {
        let mut rows = Rows(csv::Writer::from_writer(Vec::new()));
        rows.push(["plain", "a,b", "say \"hi\"", "two\nlines", ""]);
        assert_eq!(
            rows.text(),
            "plain,\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",\n"
        );
    }
}
