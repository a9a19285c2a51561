//! Values that are valid once they exist: parse, don't validate.
//!
//! Each type checks its rule in `parse` and keeps its field private, so the
//! rest of the domain never sees a bad SKU or an out-of-range price. Decoding
//! from JSON goes through the same `parse`.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Lines an order may hold.
pub const MAX_LINES: usize = 100;

/// A value that broke its rule, said so a user can fix it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field} {rule}")]
pub struct ValueError {
    /// The field, as the API names it.
    pub field: &'static str,
    /// What it must be.
    pub rule: &'static str,
}

/// Declares a string newtype with a `parse` that enforces `$check`.
macro_rules! text_value {
    ($(#[$doc:meta])* $name:ident, $field:literal, $rule:literal, $check:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Accepts `value` if it follows the rule.
            pub fn parse(value: impl Into<String>) -> Result<Self, ValueError> {
                let value = value.into();
                let check: fn(&str) -> bool = $check;
                if check(&value) {
                    Ok(Self(value))
                } else {
                    Err(ValueError { field: $field, rule: $rule })
                }
            }

            /// The text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = ValueError;
            fn try_from(value: String) -> Result<Self, ValueError> {
                Self::parse(value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

/// Printable text of `min..=max` characters: no control characters, not blank.
fn plain_text(value: &str, max: usize) -> bool {
    let length = value.chars().count();
    (1..=max).contains(&length) && !value.trim().is_empty() && !value.chars().any(char::is_control)
}

text_value!(
    /// A stock-keeping unit: 1 to 64 of `A-Z a-z 0-9 . _ -`.
    Sku,
    "sku",
    "must be 1 to 64 characters of A-Z, a-z, 0-9, '.', '_' or '-'",
    |s| (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
);

text_value!(
    /// Who placed the order: 1 to 64 printable characters.
    CustomerId,
    "customer_id",
    "must be 1 to 64 printable characters",
    |s| plain_text(s, 64)
);

text_value!(
    /// Where order e-mails go: `local@domain.tld`, at most 254 characters.
    Email,
    "email",
    "must be an e-mail address like name@example.com (at most 254 characters)",
    |s| {
        let Some((local, domain)) = s.split_once('@') else { return false };
        s.len() <= 254
            && !local.is_empty()
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains('@')
            && !s.chars().any(|c| c.is_whitespace() || c.is_control())
    }
);

text_value!(
    /// The shipping company: 1 to 64 printable characters.
    Carrier,
    "carrier",
    "must be 1 to 64 printable characters",
    |s| plain_text(s, 64)
);

text_value!(
    /// The carrier's tracking number: 1 to 128 printable characters.
    TrackingNumber,
    "tracking_number",
    "must be 1 to 128 printable characters",
    |s| plain_text(s, 128)
);

text_value!(
    /// Why an order was cancelled: 1 to 500 printable characters.
    CancelReason,
    "reason",
    "must be 1 to 500 printable characters",
    |s| plain_text(s, 500)
);

/// How many units of a SKU: 1 to 10,000.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u64", into = "u64")]
pub struct Quantity(u32);

impl Quantity {
    /// The largest quantity of one line.
    pub const MAX: u32 = 10_000;

    /// Accepts 1 to 10,000.
    pub fn parse(value: u64) -> Result<Self, ValueError> {
        match u32::try_from(value) {
            Ok(n) if (1..=Self::MAX).contains(&n) => Ok(Self(n)),
            _ => Err(ValueError {
                field: "quantity",
                rule: "must be a whole number from 1 to 10000",
            }),
        }
    }

    /// The number of units.
    pub fn get(self) -> u32 {
        self.0
    }

    /// The sum, if it stays within the limit.
    pub fn checked_add(self, other: Quantity) -> Option<Quantity> {
        Some(self.0 + other.0)
            .filter(|n| *n <= Self::MAX)
            .map(Quantity)
    }

    /// The sum, capped at the limit (for `evolve`, which must not fail).
    pub(crate) fn saturating_add(self, other: Quantity) -> Quantity {
        Quantity((self.0 + other.0).min(Self::MAX))
    }
}

impl TryFrom<u64> for Quantity {
    type Error = ValueError;
    fn try_from(value: u64) -> Result<Self, ValueError> {
        Self::parse(value)
    }
}

impl From<Quantity> for u64 {
    fn from(value: Quantity) -> u64 {
        value.0.into()
    }
}

/// The price of one unit in integer cents: 0 to 100,000,000.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u64", into = "u64")]
pub struct UnitPrice(u64);

impl UnitPrice {
    /// The highest unit price, in cents.
    pub const MAX_CENTS: u64 = 100_000_000;

    /// Accepts 0 to 100,000,000 cents.
    pub fn parse(cents: u64) -> Result<Self, ValueError> {
        if cents <= Self::MAX_CENTS {
            Ok(Self(cents))
        } else {
            Err(ValueError {
                field: "unit_price_cents",
                rule: "must be a whole number of cents from 0 to 100000000",
            })
        }
    }

    /// The price in cents.
    pub fn cents(self) -> u64 {
        self.0
    }
}

impl TryFrom<u64> for UnitPrice {
    type Error = ValueError;
    fn try_from(value: u64) -> Result<Self, ValueError> {
        Self::parse(value)
    }
}

impl From<UnitPrice> for u64 {
    fn from(value: UnitPrice) -> u64 {
        value.0
    }
}

/// One line of an order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineItem {
    /// What.
    pub sku: Sku,
    /// How many.
    pub quantity: Quantity,
    /// At what price each.
    #[serde(rename = "unit_price_cents")]
    pub unit_price: UnitPrice,
}

impl LineItem {
    /// The line's amount, `None` on overflow (which valid values cannot reach,
    /// but money is never computed unchecked).
    pub fn amount_cents(&self) -> Option<u64> {
        self.unit_price
            .cents()
            .checked_mul(self.quantity.get().into())
    }
}
