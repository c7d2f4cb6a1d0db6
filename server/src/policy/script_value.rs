//! Scalar hook fields → rhai values, built directly (no JSON in between):
//! decimals as rhai `Decimal`, times and dates as strings, lists as arrays,
//! attribute maps as maps. Records are not converted at all: scripts read
//! them through the lazy views of `script_input`.

use std::collections::BTreeMap;

use rhai::Dynamic;
use rust_decimal::Decimal;

/// A value a script can receive.
pub trait ToScript {
    /// The rhai value.
    fn to_script(&self) -> Dynamic;
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
