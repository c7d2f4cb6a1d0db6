//! The rhai runtime's unit tests: the sandbox, the limits, the helpers and
//! the answers read back.

use std::sync::Arc;
use std::time::Duration;

use rhai::{Dynamic, Engine};
use rust_decimal::Decimal;

use super::output::{bonus_output, decode, decode_bonus, guard_verdict};
use super::RhaiHost;
use crate::policy::hooks::{
    ActorInfo, BonusOutput, BranchInfo, CustomerInfo, DealInfo, GuardVerdict, TransitionInput,
};
use crate::policy::{Executable, Limits, PolicyCalls, PolicyError};

fn host() -> RhaiHost {
    RhaiHost::new(Limits::default())
}

fn input(to: &str) -> Arc<TransitionInput> {
    Arc::new(TransitionInput {
        branch: BranchInfo {
            id: "sh".into(),
            timezone: "Asia/Shanghai".into(),
        },
        deal: DealInfo {
            id: "deal_1".into(),
            title: "Fleet".into(),
            owner: "li".into(),
            currency: "CNY".into(),
            needs: vec![],
            prepayment_ratio: None,
            opened_at: "2026-03-01T08:00:00.000Z".into(),
            stage: "visit".into(),
            stages_passed: vec!["lead".into(), "qualify".into(), "visit".into()],
            signed_at: None,
            lines: vec![],
            amount_total: Decimal::new(1_000_001, 2),
            cost_total: Decimal::ZERO,
            attributes: Default::default(),
        },
        customer: CustomerInfo {
            id: "cus_1".into(),
            name: "ACME".into(),
            segment: "enterprise".into(),
            source: "assigned".into(),
            tier: "A".into(),
            owner: None,
            referred_by: None,
            last_contact_at: None,
        },
        records: vec![],
        from: "visit".into(),
        to: to.into(),
        to_kind: "open".into(),
        at: "2026-03-05T08:00:00.000Z".into(),
        actor: ActorInfo {
            user: "li".into(),
            role: "rep".into(),
        },
    })
}

#[test]
fn default_policies_compile_and_pass_their_tests() {
    for (name, src) in crate::policy::defaults::SCRIPTS {
        let p = host()
            .compile(src)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!p.tests().is_empty(), "{name} carries tests");
    }
}

#[test]
fn decimals_reach_scripts_as_decimals_and_come_back_exact() {
    let p = host()
        .compile(r#"fn guard(i) { #{ allow: i.deal.amount_total == 10000.01, reason: `${i.deal.amount_total + 0.1}` } }"#)
        .unwrap();
    let v = p.guard(&input("quote"), &Limits::default()).unwrap();
    assert!(v.allow);
    assert_eq!(v.reason.as_deref(), Some("10000.11"));
}

#[test]
fn quote_late_guard_lists_what_is_missing() {
    let p = host()
        .compile(include_str!("../../../../policies/quote-late.rhai"))
        .unwrap();
    let v = p.guard(&input("quote"), &Limits::default()).unwrap();
    assert!(!v.allow);
    assert_eq!(v.missing.len(), 2, "{v:?}");
}

#[test]
fn compile_errors_carry_line_and_column() {
    match host().compile("fn guard(i) {\n  let x = ;\n}") {
        Err(PolicyError::Compile { line, column, .. }) => {
            assert_eq!(line, Some(2));
            assert!(column.is_some());
        }
        other => panic!("{:?}", other.err()),
    }
}

#[test]
fn a_script_without_hooks_or_with_a_failing_test_is_refused() {
    assert!(matches!(
        host().compile("fn helper(x) { x }"),
        Err(PolicyError::Interface(_))
    ));
    let failing = "fn guard(i) { #{ allow: true } }\nfn test_fails() { assert(false, \"boom\"); }";
    assert!(matches!(
        host().compile(failing),
        Err(PolicyError::TestFailed(_))
    ));
}

#[test]
fn a_failing_test_names_the_line_where_it_failed() {
    // An assertion in the test itself: its line.
    let assertion = "fn guard(i) { #{ allow: true } }\n\nfn test_a() {\n  let x = 1;\n  assert(x == 2, \"x\");\n}";
    match host().compile(assertion) {
        Err(PolicyError::TestFailed(f)) => {
            assert_eq!(f.name, "test_a");
            assert_eq!(f.line, Some(5), "{}", f.message);
            assert_eq!(f.column, Some(3), "{}", f.message);
            assert!(f.message.contains("assertion failed: x"), "{}", f.message);
        }
        other => panic!("{:?}", other.err()),
    }
    // A throw inside the hook a test calls: the line inside the hook.
    let inner = "fn guard(i) {\n  if i.x > 1 {\n    throw \"too big\";\n  }\n  #{ allow: true }\n}\nfn test_b() { guard(#{ x: 5 }); }";
    match host().compile(inner) {
        Err(PolicyError::TestFailed(f)) => assert_eq!(f.line, Some(3)),
        other => panic!("{:?}", other.err()),
    }
}

#[test]
fn a_bonus_rule_may_declare_the_subjects_it_settles() {
    let bonus = "fn bonus(i) { #{ lines: [] } }";
    let declared =
        |decl: &str| host().compile(&format!("{bonus}\nfn bonus_subjects() {{ {decl} }}"));
    let p = declared(r#"["customer", "rep"]"#).unwrap();
    assert_eq!(
        p.bonus_subjects(),
        Some(&["customer".to_string(), "rep".to_string()][..])
    );
    assert!(host().compile(bonus).unwrap().bonus_subjects().is_none());
    for (decl, why) in [
        ("[]", "it is empty"),
        (r#""deal""#, "it returned a string"),
        (r#"["deal", "deal"]"#, "`deal` twice"),
        (r#"["deals"]"#, "`deals` is no subject kind"),
        ("[1]", "`1` is not a string"),
    ] {
        match declared(decl) {
            Err(PolicyError::Interface(m)) => assert!(m.contains(why), "{decl}: {m}"),
            other => panic!("{decl}: {:?}", other.map(|p| p.bonus_subjects)),
        }
    }
    // A throwing declaration is the script's error; one without a
    // `bonus` hook declares nothing it could use.
    assert!(declared(r#"throw "no""#).is_err());
    match host().compile(&format!("{bonus}\nfn bonus_subjects(x) {{ [\"deal\"] }}")) {
        Err(PolicyError::Interface(m)) => assert!(m.contains("takes no parameter"), "{m}"),
        other => panic!("{:?}", other.map(|p| p.bonus_subjects)),
    }
    match host().compile(r#"fn guard(i) { #{ allow: true } } fn bonus_subjects() { ["deal"] }"#) {
        Err(PolicyError::Interface(m)) => assert!(m.contains("no `bonus` hook"), "{m}"),
        other => panic!("{:?}", other.map(|p| p.bonus_subjects)),
    }
}

#[test]
fn the_sandbox_has_no_sleep_eval_or_import() {
    for src in [
        "fn guard(i) { sleep(10); #{ allow: true } }",
        "fn guard(i) { eval(\"1\"); #{ allow: true } }",
    ] {
        let res = host()
            .compile(src)
            .and_then(|p| p.guard(&input("quote"), &Limits::default()));
        assert!(res.is_err(), "{src} must fail");
    }
    assert!(host()
        .compile("import \"x\" as y; fn guard(i) { #{ allow: true } }")
        .is_err());
}

#[test]
fn an_infinite_loop_hits_the_operation_budget() {
    let p = host().compile("fn guard(i) { loop { } }").unwrap();
    assert!(matches!(
        p.guard(&input("quote"), &Limits::default()),
        Err(PolicyError::Budget(_))
    ));
}

#[test]
fn a_slow_script_hits_the_deadline() {
    let limits = Limits {
        max_operations: u64::MAX / 2,
        deadline: Duration::from_millis(20),
        ..Limits::default()
    };
    let h = RhaiHost::new(limits.clone());
    let p = h.compile("fn guard(i) { loop { } }").unwrap();
    assert!(matches!(
        p.guard(&input("quote"), &limits),
        Err(PolicyError::Deadline(20))
    ));
}

#[test]
fn unbounded_recursion_and_memory_bombs_hit_resource_limits() {
    let p = host()
        .compile("fn f(n) { f(n + 1) }\nfn guard(i) { f(0) }")
        .unwrap();
    assert!(matches!(
        p.guard(&input("quote"), &Limits::default()),
        Err(PolicyError::Resource(_))
    ));
    let p = host()
        .compile("fn guard(i) { let s = \"xx\"; loop { s += s; } }")
        .unwrap();
    assert!(matches!(
        p.guard(&input("quote"), &Limits::default()),
        Err(PolicyError::Resource(_))
    ));
    let p = host()
        .compile("fn guard(i) { let a = []; loop { a.push(1); } }")
        .unwrap();
    let res = p.guard(&input("quote"), &Limits::default());
    // Whichever limit trips first (array size, operations or the clock
    // in a slow debug build), the call is contained.
    assert!(
        matches!(
            res,
            Err(PolicyError::Resource(_) | PolicyError::Budget(_) | PolicyError::Deadline(_))
        ),
        "{res:?}"
    );
}

#[test]
fn throws_and_wrong_shapes_are_reported() {
    let p = host().compile("fn guard(i) { throw \"nope\"; }").unwrap();
    assert!(matches!(
        p.guard(&input("quote"), &Limits::default()),
        Err(PolicyError::Failed(_))
    ));
    let p = host().compile("fn guard(i) { 42 }").unwrap();
    assert!(matches!(
        p.guard(&input("quote"), &Limits::default()),
        Err(PolicyError::BadOutput(_))
    ));
    let p = host().compile("fn guard(i) { #{ allow: false } }").unwrap();
    assert!(matches!(
        p.guard(&input("quote"), &Limits::default()),
        Err(PolicyError::BadOutput(_))
    ));
    let p = host()
        .compile("fn guard(i) { #{ allow: true, extra: 1 } }")
        .unwrap();
    assert!(matches!(
        p.guard(&input("quote"), &Limits::default()),
        Err(PolicyError::BadOutput(_))
    ));
}

#[test]
fn an_enormous_script_is_refused() {
    let limits = Limits::default();
    let src = format!(
        "fn guard(i) {{ #{{ allow: true }} }}\n//{}",
        "x".repeat(limits.max_upload_bytes)
    );
    assert!(matches!(
        host().compile(&src),
        Err(PolicyError::Resource(_))
    ));
}

#[test]
fn inputs_are_read_only() {
    let p = host()
        .compile("fn guard(i) { i.deal.stage = \"x\"; #{ allow: true } }")
        .unwrap();
    let inp = input("quote");
    // Writing to an input is an error the author sees at once, not a
    // silent no-op.
    match p.guard(&inp, &Limits::default()) {
        Err(PolicyError::Failed(m)) => assert!(m.contains("No writable property"), "{m}"),
        other => panic!("expected a failure, got {other:?}"),
    }
    assert_eq!(inp.deal.stage, "visit");
}

#[test]
fn methods_on_input_fields_work_and_mutating_ones_are_refused() {
    let inp = input("quote");
    let reads = host()
        .compile(
            r#"fn guard(i) {
                let read = [i.deal.needs.is_empty(), i.deal.stages_passed.contains("qualify"),
                            i.records.len(), i.deal.lines.len(), i.deal.attributes.len(),
                            i.deal.amount_total.abs(), i.deal.id.len()];
                #{ allow: read.len() == 7, reason: "fields unreadable" }
            }"#,
        )
        .unwrap();
    assert!(reads.guard(&inp, &Limits::default()).unwrap().allow);
    for (script, field) in [
        ("i.deal.needs.push(\"x\")", "needs"),
        ("i.deal.stages_passed.push(\"sign\")", "stages_passed"),
        ("i.records.push(1)", "records"),
        ("i.deal.attributes.approved = \"yes\"", "attributes"),
        ("i.deal.id.clear()", "id"),
    ] {
        let p = host()
            .compile(&format!("fn guard(i) {{ {script}; #{{ allow: true }} }}"))
            .unwrap();
        match p.guard(&inp, &Limits::default()) {
            Err(PolicyError::Failed(m)) => {
                assert!(
                    m.contains(&format!("No writable property `{field}`")),
                    "{script}: {m}"
                )
            }
            other => panic!("{script}: expected a failure, got {other:?}"),
        }
    }
    assert!(inp.deal.needs.is_empty() && inp.records.is_empty());
    assert!(inp.deal.attributes.is_empty());
}

#[test]
fn guard_answers_read_directly_equal_the_json_decoding() {
    let engine = Engine::new();
    // (answer, whether the direct read takes it)
    for (answer, direct) in [
        (r#"#{ allow: true }"#, true),
        (
            r#"#{ allow: false, reason: "no", missing: ["a", "b"] }"#,
            true,
        ),
        (r#"#{ allow: true, reason: () }"#, true),
        (r#"#{ allow: false, reason: 'c' }"#, false),
        (r#"#{ allow: 1 }"#, false),
        (r#"#{ reason: "x" }"#, false),
        (r#"#{ allow: true, missing: [1] }"#, false),
        (r#"#{ allow: true, other: 1 }"#, false),
        (r#"[true]"#, false),
    ] {
        let d: Dynamic = engine.eval(answer).unwrap();
        let fast = guard_verdict(&d);
        assert_eq!(fast.is_some(), direct, "{answer}");
        if let Some(fast) = fast {
            let slow = decode::<GuardVerdict>(&d).unwrap();
            assert_eq!(
                (fast.allow, fast.reason, fast.missing),
                (slow.allow, slow.reason, slow.missing),
                "{answer}"
            );
        }
    }
}

#[test]
fn native_string_contains_answers_like_the_generic_one() {
    let generic = Engine::new();
    let ours = host();
    for case in [
        r#"["a", "b"].contains("b")"#,
        r#"["a", "b"].contains("c")"#,
        r#"[1, "x"].contains("x")"#,
        r#"['x', 'y'].contains("x")"#,
        r#"['x'].contains("xy")"#,
        r#"[].contains("")"#,
        r#""b" in ["a", "b"]"#,
        r#"[1, 2].contains(2)"#,
    ] {
        let want: bool = generic.eval(case).unwrap();
        let script = format!("fn guard(i) {{ #{{ allow: {case}, reason: \"no\" }} }}");
        let got = ours
            .compile(&script)
            .unwrap()
            .guard(&input("quote"), &Limits::default())
            .unwrap()
            .allow;
        assert_eq!(got, want, "{case}");
    }
}

#[test]
fn bonus_answers_read_from_their_maps_equal_the_json_reading() {
    let h = host();
    let mut fast = 0;
    for case in [
        "#{ lines: [] }",
        "#{}",
        r#"#{ lines: [#{ rule: "r", amount: dec("1.50"), explanation: "x" }] }"#,
        r#"#{ lines: [#{ rule: "r", amount: dec(-1000), explanation: "x", flag: () }] }"#,
        r#"#{ lines: [#{ rule: "r", amount: 300, explanation: "x", flag: "replan" }] }"#,
        r#"#{ lines: [#{ rule: "r", amount: "12.340", explanation: "" }, #{ rule: "s", amount: dec("0.000"), explanation: "y" }] }"#,
        // (scripts have no floats: 1.5 is a decimal)
        r#"#{ lines: [#{ rule: "r", amount: 1.5, explanation: "x" }] }"#,
        // Not the plain shape: the JSON reading decides.
        r#"#{ lines: [#{ rule: "r", amount: "1e3", explanation: "x" }] }"#,
        r#"#{ lines: [#{ rule: "r", explanation: "x" }] }"#,
        r#"#{ lines: [#{ rule: 7, amount: 1, explanation: "x" }] }"#,
        r#"#{ lines: [#{ rule: "r", amount: 1, explanation: "x", extra: 1 }] }"#,
        r#"#{ lines: [], more: 1 }"#,
        r#"#{ lines: "none" }"#,
        "[]",
        "()",
    ] {
        let out: Dynamic = h.engine.eval(case).unwrap();
        let slow: Result<BonusOutput, PolicyError> = decode_bonus(&out);
        // Other shapes take the JSON reading itself.
        if let Some(o) = bonus_output(&out) {
            fast += 1;
            let slow = slow.unwrap_or_else(|e| panic!("{case}: {e}"));
            assert_eq!(
                serde_json::to_value(&o).unwrap(),
                serde_json::to_value(&slow).unwrap(),
                "{case}"
            );
            for (a, b) in o.lines.iter().zip(&slow.lines) {
                assert_eq!(a.amount.serialize(), b.amount.serialize(), "{case}");
            }
        }
    }
    assert_eq!(fast, 7);
}
