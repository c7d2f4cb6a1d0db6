//! Hook records → rhai values, built directly (no JSON in between): maps
//! with the interface's field names, decimals as rhai `Decimal`, times and
//! dates as strings. This conversion runs on every rhai hook call, so it
//! avoids the intermediate allocations a serde round trip would make.

use std::collections::BTreeMap;

use rhai::{Dynamic, Map};
use rust_decimal::Decimal;

use super::hooks::{
    ActorInfo, AssignInput, BonusInput, BranchInfo, CadenceInput, CustomerInfo, DealInfo, LineInfo,
    OrderInfo, RecordInfo, RepLoad, RevenueInfo, TierInput, TransitionInput,
};

/// A value a script can receive.
pub trait ToScript {
    /// The rhai value.
    fn to_script(&self) -> Dynamic;
}

macro_rules! record {
    ($self:ident { $($field:ident),* $(,)? }) => {{
        let mut m = Map::new();
        $( m.insert(stringify!($field).into(), $self.$field.to_script()); )*
        Dynamic::from_map(m)
    }};
}

impl ToScript for String {
    fn to_script(&self) -> Dynamic {
        Dynamic::from(self.clone())
    }
}

impl ToScript for bool {
    fn to_script(&self) -> Dynamic {
        Dynamic::from_bool(*self)
    }
}

impl ToScript for i64 {
    fn to_script(&self) -> Dynamic {
        Dynamic::from_int(*self)
    }
}

impl ToScript for Decimal {
    fn to_script(&self) -> Dynamic {
        Dynamic::from_decimal(*self)
    }
}

impl<T: ToScript> ToScript for Option<T> {
    fn to_script(&self) -> Dynamic {
        self.as_ref().map_or(Dynamic::UNIT, ToScript::to_script)
    }
}

impl<T: ToScript> ToScript for Vec<T> {
    fn to_script(&self) -> Dynamic {
        Dynamic::from_array(self.iter().map(ToScript::to_script).collect())
    }
}

impl ToScript for BTreeMap<String, String> {
    fn to_script(&self) -> Dynamic {
        Dynamic::from_map(
            self.iter()
                .map(|(k, v)| (k.as_str().into(), v.to_script()))
                .collect(),
        )
    }
}

impl ToScript for BranchInfo {
    fn to_script(&self) -> Dynamic {
        record!(self { id, timezone })
    }
}

impl ToScript for LineInfo {
    fn to_script(&self) -> Dynamic {
        record!(self {
            brand,
            brand_new,
            product,
            amount,
            cost
        })
    }
}

impl ToScript for DealInfo {
    fn to_script(&self) -> Dynamic {
        record!(self {
            id,
            title,
            owner,
            currency,
            needs,
            prepayment_ratio,
            opened_at,
            stage,
            stages_passed,
            signed_at,
            lines,
            amount_total,
            cost_total,
            attributes,
        })
    }
}

impl ToScript for CustomerInfo {
    fn to_script(&self) -> Dynamic {
        record!(self {
            id,
            name,
            segment,
            source,
            tier,
            owner,
            referred_by,
            last_contact_at
        })
    }
}

impl ToScript for RecordInfo {
    fn to_script(&self) -> Dynamic {
        record!(self {
            at,
            by,
            kind,
            summary,
            has_problems
        })
    }
}

impl ToScript for ActorInfo {
    fn to_script(&self) -> Dynamic {
        record!(self { user, role })
    }
}

impl ToScript for TransitionInput {
    fn to_script(&self) -> Dynamic {
        record!(self {
            branch,
            deal,
            customer,
            records,
            from,
            to,
            to_kind,
            at,
            actor
        })
    }
}

impl ToScript for RevenueInfo {
    fn to_script(&self) -> Dynamic {
        record!(self {
            customer_id,
            revenue,
            tier
        })
    }
}

impl ToScript for TierInput {
    fn to_script(&self) -> Dynamic {
        record!(self {
            branch,
            as_of,
            customers
        })
    }
}

impl ToScript for CadenceInput {
    fn to_script(&self) -> Dynamic {
        record!(self { branch, customer })
    }
}

impl ToScript for RepLoad {
    fn to_script(&self) -> Dynamic {
        record!(self {
            user,
            a_customers,
            customers,
            open_deals
        })
    }
}

impl ToScript for AssignInput {
    fn to_script(&self) -> Dynamic {
        record!(self {
            branch,
            customer,
            reps
        })
    }
}

impl ToScript for OrderInfo {
    fn to_script(&self) -> Dynamic {
        record!(self {
            deal_id,
            signed_on,
            amount_cny,
            cost_cny,
            prepayment_ratio
        })
    }
}

impl ToScript for BonusInput {
    fn to_script(&self) -> Dynamic {
        record!(self {
            branch,
            period,
            period_kind,
            rep,
            subject_kind,
            subject,
            deal,
            cny_per_usd,
            per_usd,
            customer,
            orders,
            new_customers,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The direct conversion must agree with the interface's JSON shape: the
    /// same keys, and decimals as rhai decimals.
    #[test]
    fn agrees_with_the_json_shape() {
        let line = LineInfo {
            brand: "volvo".into(),
            brand_new: true,
            product: "XC90".into(),
            amount: Decimal::new(1_000_001, 2),
            cost: Decimal::ZERO,
        };
        let d = line.to_script();
        let m = d.cast::<Map>();
        let json = serde_json::to_value(&line).unwrap();
        let keys: Vec<String> = m.keys().map(|k| k.to_string()).collect();
        let mut json_keys: Vec<String> = json.as_object().unwrap().keys().cloned().collect();
        json_keys.sort();
        assert_eq!(keys, json_keys);
        assert_eq!(
            m["amount"].clone().cast::<Decimal>(),
            Decimal::new(1_000_001, 2)
        );
    }
}
