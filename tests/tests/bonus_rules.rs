//! The default bonus rules agree with each other, whatever runs them: the
//! new-brand bonus as a rhai script, as the wasm plugin built from
//! `plugins/new-brand-bonus`, as the component the server ships in
//! `policies/` and as the native Rust oracle, over thousands of generated
//! contracts clustered on the §5.1 boundaries; the new-customer bonus and
//! the no-new-customer rule as rhai against the oracle over generated
//! customers and reps.
//!
//! `DEALFLOW_REFRESH_PLUGINS=1 cargo test -p dealflow-tests --test
//! bonus_rules` rewrites `policies/new-brand-bonus.wasm` from the fresh
//! build (after a change to the plugin or the SDK).

use std::sync::Arc;

use dealflow::incentive::native;
use dealflow::policy::executor::Executor;
use dealflow::policy::hooks::{
    BonusInput, BonusOutput, BranchInfo, CustomerInfo, DealInfo, LineInfo, OrderInfo,
};
use dealflow::policy::live::Runtime;
use dealflow::policy::{Executable, Limits, PolicyCalls};
use dealflow_tests::{Gen, PLUGIN_NEW_BRAND_BONUS};
use rust_decimal::Decimal;

/// Generated cases per property.
const CASES: usize = 4000;

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn branch() -> BranchInfo {
    BranchInfo {
        id: "sh".into(),
        timezone: "Asia/Shanghai".into(),
    }
}

fn base(kind: &str, period: &str, period_kind: &str) -> BonusInput {
    BonusInput {
        branch: branch(),
        period: period.into(),
        period_kind: period_kind.into(),
        rep: "li".into(),
        subject_kind: kind.into(),
        subject: "S-1".into(),
        deal: None,
        cny_per_usd: Some(d("7.1")),
        per_usd: None,
        customer: None,
        orders: Vec::new(),
        new_customers: 0,
    }
}

/// A contract whose new-brand part sits on or near a §5.1 boundary.
fn contract(g: &mut Gen) -> BonusInput {
    let currency = g.pick(&["USD", "CNY", "EUR"]);
    let per_usd = match currency {
        "USD" => Some(Decimal::ONE),
        _ if g.chance(3) => None,
        "CNY" => Some(d("6.5") + g.decimal(1, 4)),
        _ => Some(d("0.8") + g.decimal(1, 4)),
    };
    let rate = per_usd.unwrap_or(Decimal::ONE);
    let new_lines = g.below(4) as usize;
    let old_lines = g.below(3) as usize;
    let target_usd = Decimal::from(g.pick(&[10_000i64, 30_000, 60_000, 100_000, 5_000, 200_000]));
    let nudge = g.pick(&["0", "0.01", "-0.01", "1", "-1", "0.0001", "-2500"]);
    let total = ((target_usd * rate) + d(nudge))
        .round_dp(2)
        .max(Decimal::ZERO);
    let margin = g.pick(&["0.1", "0.0999", "0.2", "0.10001", "0.5", "0", "-0.1"]);
    let mut lines = Vec::new();
    for i in 0..new_lines {
        // Split the total unevenly; the last line takes the rest.
        let share = if i + 1 == new_lines {
            total - lines.iter().map(|l: &LineInfo| l.amount).sum::<Decimal>()
        } else {
            (total / Decimal::from(new_lines as i64 + 1)).round_dp(2)
        };
        let cost = (share * (Decimal::ONE - d(margin))).round_dp(2);
        lines.push(LineInfo {
            brand: format!("new{}", g.below(3)),
            brand_new: true,
            product: "p".into(),
            amount: share,
            cost,
        });
    }
    for _ in 0..old_lines {
        lines.push(LineInfo {
            brand: "old".into(),
            brand_new: false,
            product: "p".into(),
            amount: g.decimal(500_000, 2),
            cost: g.decimal(500_000, 2),
        });
    }
    let amount_total = lines.iter().map(|l| l.amount).sum();
    let cost_total = lines.iter().map(|l| l.cost).sum();
    let mut input = base(
        if g.chance(95) { "deal" } else { "customer" },
        "2026-03",
        "month",
    );
    input.per_usd = per_usd;
    input.deal = Some(DealInfo {
        id: "D-1".into(),
        title: "t".into(),
        owner: "li".into(),
        currency: currency.into(),
        needs: Vec::new(),
        prepayment_ratio: None,
        opened_at: "2026-03-01T00:00:00.000Z".into(),
        stage: "sign".into(),
        stages_passed: vec!["sign".into()],
        signed_at: Some("2026-03-02T00:00:00.000Z".into()),
        lines,
        amount_total,
        cost_total,
        attributes: Default::default(),
    });
    input
}

/// What a rule answered, reduced to what is paid: (rule, amount, flag) per
/// line, or that it failed.
fn paid(out: Result<BonusOutput, String>) -> Result<Vec<(String, Decimal, Option<String>)>, ()> {
    out.map(|o| {
        o.lines
            .into_iter()
            .map(|l| (l.rule, l.amount.normalize(), l.flag))
            .collect()
    })
    .map_err(|_| ())
}

fn run(exec: &dyn Executable, input: &Arc<BonusInput>) -> Result<BonusOutput, String> {
    exec.bonus(input, &Limits::default())
        .map_err(|e| e.to_string())
}

fn executor() -> Executor {
    Executor::new(Limits::default(), 2).expect("engines start")
}

fn workspace_file(path: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
}

#[test]
fn the_new_brand_bonus_agrees_in_rhai_wasm_the_shipped_component_and_native_rust() {
    let ex = executor();
    let script = std::fs::read(workspace_file("policies/new-brand-bonus.rhai")).unwrap();
    let fresh = std::fs::read(PLUGIN_NEW_BRAND_BONUS).unwrap();
    let shipped_path = workspace_file("policies/new-brand-bonus.wasm");
    if std::env::var_os("DEALFLOW_REFRESH_PLUGINS").is_some() {
        std::fs::write(&shipped_path, &fresh).unwrap();
    }
    let shipped = std::fs::read(&shipped_path).unwrap();
    let interface_1_0 =
        std::fs::read(workspace_file("tests/fixtures/new-brand-bonus-1.0.0.wasm")).unwrap();
    let runtimes: Vec<(&str, Arc<dyn Executable>)> = vec![
        ("rhai", ex.compile(Runtime::Rhai, &script).unwrap()),
        (
            "wasm (fresh build)",
            ex.compile(Runtime::Wasm, &fresh).unwrap(),
        ),
        (
            "wasm (policies/new-brand-bonus.wasm)",
            ex.compile(Runtime::Wasm, &shipped).unwrap(),
        ),
        // Built against interface 1.0.0 before 1.1 existed: still loads and
        // decides alike.
        (
            "wasm 1.0.0 (tests/fixtures/new-brand-bonus-1.0.0.wasm)",
            ex.compile(Runtime::Wasm, &interface_1_0).unwrap(),
        ),
    ];
    assert_eq!(runtimes[1].1.interface(), Some("1.1.0"));
    assert_eq!(runtimes[3].1.interface(), Some("1.0.0"));
    let mut g = Gen(0x5EED_0001);
    let mut paying = 0;
    for case in 0..CASES {
        let input = Arc::new(contract(&mut g));
        let want = paid(native::new_brand_sale(&input));
        if want
            .as_ref()
            .is_ok_and(|l| l.iter().any(|(_, a, _)| !a.is_zero()))
        {
            paying += 1;
        }
        for (name, exec) in &runtimes {
            let got = paid(run(exec.as_ref(), &input));
            assert_eq!(
                got,
                want,
                "case {case}: {name} disagrees with native Rust on {}",
                serde_json::to_string(&*input).unwrap()
            );
        }
    }
    // The generator must exercise both sides of the boundaries.
    assert!(
        paying > CASES / 5 && paying < CASES * 4 / 5,
        "{paying} of {CASES} paid"
    );
}

/// A customer whose window orders sit near the §5.2 boundaries.
fn customer_subject(g: &mut Gen) -> BonusInput {
    let mut input = base("customer", "2026-Q2", "quarter");
    let segment = g.pick(&["industrial", "government", "enterprise", "individual"]);
    let source = g.pick(&["self_developed", "self_developed", "assigned", "referral"]);
    input.customer = Some(CustomerInfo {
        id: "C-1".into(),
        name: "ACME".into(),
        segment: segment.into(),
        source: source.into(),
        tier: "C".into(),
        owner: Some("li".into()),
        referred_by: None,
        last_contact_at: None,
    });
    let count = g.below(5) as usize;
    let target = Decimal::from(g.pick(&[100_000i64, 200_000, 300_000, 50_000, 400_000]));
    let nudge = d(g.pick(&["0", "-0.01", "0.01", "-1", "1"]));
    let total = (target + nudge).max(Decimal::ZERO);
    let margin = d(g.pick(&["0.1", "0.0999", "0.25", "0"]));
    let prepayment = g.pick(&[Some("0.5"), Some("0.4999"), Some("1"), None]);
    for i in 0..count {
        let amount = if i + 1 == count {
            total - input.orders.iter().map(|o| o.amount_cny).sum::<Decimal>()
        } else {
            (total / Decimal::from(count as i64)).round_dp(2)
        };
        input.orders.push(OrderInfo {
            deal_id: format!("D-{i}"),
            signed_on: "2026-01-15".into(),
            amount_cny: amount,
            cost_cny: (amount * (Decimal::ONE - margin)).round_dp(2),
            prepayment_ratio: if i == 0 { prepayment.map(d) } else { None },
        });
    }
    input
}

fn rep_subject(g: &mut Gen) -> BonusInput {
    let (period, kind) = g.pick(&[
        ("2026-H1", "half"),
        ("2026", "year"),
        ("2026-Q1", "quarter"),
    ]);
    let mut input = base("rep", period, kind);
    input.new_customers = g.below(3) as i64;
    input
}

#[test]
fn the_new_customer_and_no_new_customer_scripts_agree_with_native_rust() {
    let ex = executor();
    for (file, oracle, generate) in [
        (
            "policies/new-customer-bonus.rhai",
            native::new_customer as fn(&BonusInput) -> Result<BonusOutput, String>,
            customer_subject as fn(&mut Gen) -> BonusInput,
        ),
        (
            "policies/no-new-customer.rhai",
            native::no_new_customer,
            rep_subject,
        ),
    ] {
        let script = std::fs::read(workspace_file(file)).unwrap();
        let exec = ex.compile(Runtime::Rhai, &script).unwrap();
        let mut g = Gen(0x5EED_0002);
        let mut lines = 0;
        for case in 0..CASES {
            let input = Arc::new(generate(&mut g));
            let want = paid(oracle(&input));
            lines += want.as_ref().map_or(0, Vec::len);
            assert_eq!(
                paid(run(exec.as_ref(), &input)),
                want,
                "case {case} of {file}: {}",
                serde_json::to_string(&*input).unwrap()
            );
        }
        assert!(lines > CASES / 10, "{file}: only {lines} lines");
    }
}
