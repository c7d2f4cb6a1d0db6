//! Hook inputs as lazy, read-only rhai values. A script reads a record's
//! fields by name (`input.deal.lines[0].amount`) exactly as it would read a
//! map, but nothing is converted until it is read: a guard that looks at
//! two fields pays for two fields, not for the deal, its customer and fifty
//! communication records. Records have getters and no setters, so inputs
//! are read-only; a script's own example tests may still pass maps of the
//! same shape, since property syntax is the same for both.

use std::any::Any;
use std::ptr::NonNull;
use std::sync::Arc;

use rhai::{Array, Dynamic, Engine, EvalAltResult};

use super::value::ToScript;
use crate::policy::hooks::{
    ActorInfo, AssignInput, BonusInput, BranchInfo, CadenceInput, CustomerInfo, DealInfo, LineInfo,
    OrderInfo, RecordInfo, RepLoad, RevenueInfo, TierInput, TransitionInput,
};

/// A read-only view of a `T` inside a shared hook input: the root keeps the
/// whole input alive, so views of its parts are one reference-count bump
/// each, however deep.
pub struct Node<T: 'static> {
    root: Arc<dyn Any + Send + Sync>,
    ptr: NonNull<T>,
}

// SAFETY: `ptr` points into the allocation `root` owns and keeps alive; the
// hook records have no interior mutability and are never mutated once
// shared, so a `Node<T>` is just a `&T` with an owner, and `&T` is `Send`
// and `Sync` whenever `T: Sync`.
unsafe impl<T: Sync> Send for Node<T> {}
// SAFETY: as above.
unsafe impl<T: Sync> Sync for Node<T> {}

impl<T> Clone for Node<T> {
    fn clone(&self) -> Self {
        Self {
            root: Arc::clone(&self.root),
            ptr: self.ptr,
        }
    }
}

impl<T: Send + Sync + 'static> Node<T> {
    /// A view of the whole input.
    pub fn root(input: Arc<T>) -> Self {
        let ptr = NonNull::from(&*input);
        Self { root: input, ptr }
    }
}

impl<T> Node<T> {
    fn get(&self) -> &T {
        // SAFETY: see the `Send` impl: the pointee lives as long as `root`.
        unsafe { self.ptr.as_ref() }
    }

    fn child<U>(&self, part: impl FnOnce(&T) -> &U) -> Node<U> {
        Node {
            root: Arc::clone(&self.root),
            ptr: NonNull::from(part(self.get())),
        }
    }

    fn child_value<U: Sync + 'static>(&self, part: impl FnOnce(&T) -> &U) -> Dynamic {
        Dynamic::from(self.child(part))
    }

    /// Whether `v` is a view of exactly `part` (a record written back unchanged).
    fn is_child<U: 'static>(v: &Dynamic, part: &U) -> bool {
        v.read_lock::<Node<U>>()
            .is_some_and(|n| std::ptr::eq(n.ptr.as_ptr(), part))
    }
}

/// The error of a script writing to its input.
fn read_only(field: &str) -> Box<EvalAltResult> {
    format!("No writable property `{field}`: hook inputs are read-only").into()
}

/// Accepts a write-back of `field` only when nothing changed (see
/// [`ToScript::is_script`]); any real write is an error the author sees.
fn unchanged(same: bool, field: &str) -> Result<(), Box<EvalAltResult>> {
    if same {
        Ok(())
    } else {
        Err(read_only(field))
    }
}

/// The script's view of a hook input (one of the records `register`ed).
pub fn view<T: Send + Sync + 'static>(input: Arc<T>) -> Dynamic {
    Dynamic::from(Node::root(input))
}

/// Registers a record type: its rhai type name, one getter per field and
/// `to_string`/`to_debug` (its JSON). Field kinds: `value` (scalars, lists
/// of scalars, attribute maps), `node` (a record), `opt_node` (an optional
/// record: `()` when absent) and `nodes` (a list of records).
macro_rules! expose {
    ($engine:ident, $ty:ty, $name:literal { $($field:ident : $kind:ident),* $(,)? }) => {{
        $engine.register_type_with_name::<Node<$ty>>($name);
        $( expose!(@field $engine, $ty, $field, $kind); )*
        $engine.register_fn("to_string", |n: &mut Node<$ty>| to_json_text(n.get()));
        $engine.register_fn("to_debug", |n: &mut Node<$ty>| to_json_text(n.get()));
    }};
    (@field $e:ident, $ty:ty, $field:ident, value) => {
        $e.register_get(stringify!($field), |n: &mut Node<$ty>| n.get().$field.to_script());
        $e.register_set(stringify!($field), |n: &mut Node<$ty>, v: Dynamic| {
            unchanged(n.get().$field.is_script(&v), stringify!($field))
        });
    };
    (@field $e:ident, $ty:ty, $field:ident, node) => {
        $e.register_get(stringify!($field), |n: &mut Node<$ty>| n.child_value(|t| &t.$field));
        $e.register_set(stringify!($field), |n: &mut Node<$ty>, v: Dynamic| {
            unchanged(Node::<$ty>::is_child(&v, &n.get().$field), stringify!($field))
        });
    };
    (@field $e:ident, $ty:ty, $field:ident, opt_node) => {
        $e.register_get(stringify!($field), |n: &mut Node<$ty>| match &n.get().$field {
            Some(_) => n.child_value(|t| t.$field.as_ref().expect("checked just above")),
            None => Dynamic::UNIT,
        });
        $e.register_set(stringify!($field), |n: &mut Node<$ty>, v: Dynamic| {
            let same = match &n.get().$field {
                Some(part) => Node::<$ty>::is_child(&v, part),
                None => v.is_unit(),
            };
            unchanged(same, stringify!($field))
        });
    };
    (@field $e:ident, $ty:ty, $field:ident, nodes) => {
        $e.register_get(stringify!($field), |n: &mut Node<$ty>| {
            let len = n.get().$field.len();
            Dynamic::from_array((0..len).map(|i| n.child_value(|t| &t.$field[i])).collect())
        });
        $e.register_set(stringify!($field), |n: &mut Node<$ty>, v: Dynamic| {
            let parts = &n.get().$field;
            let same = v.read_lock::<Array>().is_some_and(|a| {
                a.len() == parts.len()
                    && a.iter().zip(parts).all(|(d, p)| Node::<$ty>::is_child(d, p))
            });
            unchanged(same, stringify!($field))
        });
    };
}

fn to_json_text<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// Registers every hook record with `engine`.
pub fn register(engine: &mut Engine) {
    expose!(engine, BranchInfo, "Branch" { id: value, timezone: value });
    expose!(engine, LineInfo, "Line" {
        brand: value, brand_new: value, product: value, amount: value, cost: value,
    });
    expose!(engine, DealInfo, "Deal" {
        id: value, title: value, owner: value, currency: value, needs: value,
        prepayment_ratio: value, opened_at: value, stage: value, stages_passed: value,
        signed_at: value, lines: nodes, amount_total: value, cost_total: value,
        attributes: value,
    });
    expose!(engine, CustomerInfo, "Customer" {
        id: value, name: value, segment: value, source: value, tier: value, owner: value,
        referred_by: value, last_contact_at: value,
    });
    expose!(engine, RecordInfo, "Record" {
        at: value, by: value, kind: value, summary: value, has_problems: value,
    });
    expose!(engine, ActorInfo, "Actor" { user: value, role: value });
    expose!(engine, TransitionInput, "TransitionInput" {
        branch: node, deal: node, customer: node, records: nodes, from: value, to: value,
        to_kind: value, at: value, actor: node,
    });
    expose!(engine, RevenueInfo, "Revenue" { customer_id: value, revenue: value, tier: value });
    expose!(engine, TierInput, "TierInput" { branch: node, as_of: value, customers: nodes });
    expose!(engine, CadenceInput, "CadenceInput" { branch: node, customer: node });
    expose!(engine, RepLoad, "RepLoad" {
        user: value, a_customers: value, customers: value, open_deals: value,
    });
    expose!(engine, AssignInput, "AssignInput" { branch: node, customer: node, reps: nodes });
    expose!(engine, OrderInfo, "Order" {
        deal_id: value, signed_on: value, amount_cny: value, cost_cny: value,
        prepayment_ratio: value,
    });
    expose!(engine, BonusInput, "BonusInput" {
        branch: node, period: value, period_kind: value, rep: value, subject_kind: value,
        subject: value, deal: opt_node, cny_per_usd: value, per_usd: value,
        customer: opt_node, orders: nodes, new_customers: value,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::Decimal;

    fn engine() -> Engine {
        let mut e = Engine::new();
        register(&mut e);
        e
    }

    fn bonus() -> Arc<BonusInput> {
        let deal: DealInfo = serde_json::from_value(serde_json::json!({
            "id": "D-1", "title": "Fleet", "owner": "li", "currency": "USD", "needs": ["fleet"],
            "prepayment_ratio": null, "opened_at": "2026-03-01T00:00:00.000Z", "stage": "sign",
            "stages_passed": ["lead", "sign"], "signed_at": "2026-03-02T00:00:00.000Z",
            "lines": [{"brand": "volvo", "brand_new": true, "product": "XC90", "amount": "10000.01", "cost": "9000"}],
            "amount_total": "10000.01", "cost_total": "9000", "attributes": {"k": "v"}
        }))
        .unwrap();
        Arc::new(BonusInput {
            branch: BranchInfo {
                id: "sh".into(),
                timezone: "Asia/Shanghai".into(),
            },
            period: "2026-03".into(),
            period_kind: "month".into(),
            rep: "li".into(),
            subject_kind: "deal".into(),
            subject: "D-1".into(),
            deal: Some(deal),
            cny_per_usd: Some(Decimal::new(71, 1)),
            per_usd: None,
            customer: None,
            orders: Vec::new(),
            new_customers: 0,
        })
    }

    fn eval(script: &str) -> Dynamic {
        let e = engine();
        let ast = e.compile(script).unwrap();
        e.call_fn(&mut rhai::Scope::new(), &ast, "f", (view(bonus()),))
            .unwrap()
    }

    #[test]
    fn fields_read_like_map_fields_at_any_depth() {
        let amount = eval("fn f(i) { i.deal.lines[0].amount * i.cny_per_usd }");
        assert_eq!(amount.cast::<Decimal>(), Decimal::new(71_000_071, 3));
        let n =
            eval("fn f(i) { let n = 0; for l in i.deal.lines { if l.brand_new { n += 1 } } n }");
        assert_eq!(n.as_int().unwrap(), 1);
        assert_eq!(
            eval("fn f(i) { i.deal.attributes.k }")
                .into_string()
                .unwrap(),
            "v"
        );
        assert!(eval("fn f(i) { i.deal.stages_passed.contains(\"sign\") }")
            .as_bool()
            .unwrap());
    }

    #[test]
    fn absent_records_and_values_are_unit() {
        assert!(eval("fn f(i) { i.customer }").is_unit());
        assert!(eval("fn f(i) { i.per_usd }").is_unit());
        assert!(eval("fn f(i) { i.deal.prepayment_ratio }").is_unit());
    }

    #[test]
    fn records_print_as_json_and_name_their_type() {
        let text = eval("fn f(i) { `${i.branch}` }").into_string().unwrap();
        assert_eq!(text, r#"{"id":"sh","timezone":"Asia/Shanghai"}"#);
        let t = eval("fn f(i) { type_of(i.deal.lines[0]) }")
            .into_string()
            .unwrap();
        assert_eq!(t, "Line");
    }

    #[test]
    fn a_view_outlives_nothing_it_points_into() {
        // A view handed out of a call keeps the whole input alive.
        let root = bonus();
        let line = view(Arc::clone(&root));
        drop(root);
        let e = engine();
        let ast = e.compile("fn f(i) { i.deal.lines[0] }").unwrap();
        let l: Dynamic = e
            .call_fn(&mut rhai::Scope::new(), &ast, "f", (line,))
            .unwrap();
        let l = l.cast::<Node<LineInfo>>();
        assert_eq!(l.get().brand, "volvo");
    }
}
