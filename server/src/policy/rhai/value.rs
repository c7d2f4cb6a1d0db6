//! Scalar hook fields → rhai values, built directly (no JSON in between):
//! decimals as rhai `Decimal`, times and dates as strings, lists as arrays,
//! attribute maps as maps. Records are not converted at all: scripts read
//! them through the lazy views of `input`.

use std::collections::BTreeMap;

use rhai::{Array, Dynamic, ImmutableString, Map};
use rust_decimal::Decimal;

/// A value a script can receive.
pub trait ToScript {
    /// The rhai value.
    fn to_script(&self) -> Dynamic;

    /// Whether `v` is this value as a script sees it: rhai writes a value
    /// read through a property back after any method call on it
    /// (`deal.needs.is_empty()`), and an unchanged write-back is no write.
    fn is_script(&self, v: &Dynamic) -> bool;
}

impl ToScript for String {
    fn to_script(&self) -> Dynamic {
        Dynamic::from(self.clone())
    }

    fn is_script(&self, v: &Dynamic) -> bool {
        v.read_lock::<ImmutableString>()
            .is_some_and(|s| s.as_str() == self)
    }
}

impl ToScript for bool {
    fn to_script(&self) -> Dynamic {
        Dynamic::from_bool(*self)
    }

    fn is_script(&self, v: &Dynamic) -> bool {
        v.as_bool() == Ok(*self)
    }
}

impl ToScript for i64 {
    fn to_script(&self) -> Dynamic {
        Dynamic::from_int(*self)
    }

    fn is_script(&self, v: &Dynamic) -> bool {
        v.as_int() == Ok(*self)
    }
}

impl ToScript for Decimal {
    fn to_script(&self) -> Dynamic {
        Dynamic::from_decimal(*self)
    }

    fn is_script(&self, v: &Dynamic) -> bool {
        // Scale counts: 1.50 written back as 1.5 would be a change.
        v.read_lock::<Decimal>()
            .is_some_and(|d| *d == *self && d.scale() == self.scale())
    }
}

impl<T: ToScript> ToScript for Option<T> {
    fn to_script(&self) -> Dynamic {
        self.as_ref().map_or(Dynamic::UNIT, ToScript::to_script)
    }

    fn is_script(&self, v: &Dynamic) -> bool {
        match self {
            Some(t) => t.is_script(v),
            None => v.is_unit(),
        }
    }
}

impl<T: ToScript> ToScript for Vec<T> {
    fn to_script(&self) -> Dynamic {
        Dynamic::from_array(self.iter().map(ToScript::to_script).collect())
    }

    fn is_script(&self, v: &Dynamic) -> bool {
        v.read_lock::<Array>().is_some_and(|a| {
            a.len() == self.len() && self.iter().zip(a.iter()).all(|(t, d)| t.is_script(d))
        })
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

    fn is_script(&self, v: &Dynamic) -> bool {
        v.read_lock::<Map>().is_some_and(|m| {
            m.len() == self.len()
                && self
                    .iter()
                    .all(|(k, t)| m.get(k.as_str()).is_some_and(|d| t.is_script(d)))
        })
    }
}
