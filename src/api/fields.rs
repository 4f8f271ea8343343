//! Reading a JSON object field by field, collecting every problem at once.

use serde_json::{Map, Value};

use crate::{
    domain::rules::{ListRule, TextRule},
    service::FieldErrors,
};

pub const REQUIRED: &str = "is required";
pub const NOT_NULL: &str = "must not be null";
pub const NOT_STRING: &str = "must be a string";
pub const NOT_ARRAY: &str = "must be an array";
pub const UNKNOWN: &str = "is not a known field";

/// A request object being read; fields not taken by the end are reported as unknown.
pub struct Fields {
    object: Map<String, Value>,
    errors: FieldErrors,
}

impl Fields {
    pub fn new(object: Map<String, Value>) -> Self {
        Fields {
            object,
            errors: FieldErrors::new(),
        }
    }

    /// Records a problem with `field`.
    pub fn error(&mut self, field: &str, message: impl Into<String>) {
        self.errors.add(field, message);
    }

    /// Takes the field's value: `None` when absent (an error if `required`) or `null`.
    fn value(&mut self, field: &str, required: bool) -> Option<Value> {
        match self.object.remove(field) {
            None => {
                if required {
                    self.error(field, REQUIRED);
                }
                None
            }
            Some(Value::Null) => {
                self.error(field, NOT_NULL);
                None
            }
            Some(value) => Some(value),
        }
    }

    /// A string field.
    pub fn string(&mut self, field: &str, required: bool) -> Option<String> {
        match self.value(field, required)? {
            Value::String(s) => Some(s),
            _ => {
                self.error(field, NOT_STRING);
                None
            }
        }
    }

    /// A boolean field.
    pub fn boolean(&mut self, field: &str, required: bool) -> Option<bool> {
        match self.value(field, required)? {
            Value::Bool(b) => Some(b),
            _ => {
                self.error(field, "must be true or false");
                None
            }
        }
    }

    /// A string field that must keep `rule` (its length and pattern).
    pub fn text(&mut self, field: &str, required: bool, rule: &TextRule) -> Option<String> {
        let value = self.string(field, required)?;
        match rule.check(&value) {
            Ok(()) => Some(value),
            Err(e) => {
                self.error(field, e.message().to_owned());
                None
            }
        }
    }

    /// A field of strings that must keep `list` (how many) and `item` (each one).
    pub fn text_list(
        &mut self,
        field: &str,
        required: bool,
        list: &ListRule,
        item: &TextRule,
    ) -> Option<Vec<String>> {
        let items = self.string_array(field, required, item.pattern_message)?;
        if !list.allows_count(items.len()) {
            self.error(field, list.count_message());
            return None;
        }
        for value in &items {
            if let Err(e) = item.check(value) {
                self.error(field, e.message().to_owned());
                return None;
            }
        }
        Some(items)
    }

    /// An array-of-strings field; `item_message` describes a non-string item.
    pub fn string_array(
        &mut self,
        field: &str,
        required: bool,
        item_message: &str,
    ) -> Option<Vec<String>> {
        match self.value(field, required)? {
            Value::Array(items) => {
                let strings: Option<Vec<String>> = items
                    .into_iter()
                    .map(|item| match item {
                        Value::String(s) => Some(s),
                        _ => None,
                    })
                    .collect();
                if strings.is_none() {
                    self.error(field, item_message);
                }
                strings
            }
            _ => {
                self.error(field, NOT_ARRAY);
                None
            }
        }
    }

    /// Parses a taken string with `parse`, recording `message` when it fails.
    pub fn parse<T>(
        &mut self,
        field: &str,
        value: Option<String>,
        parse: impl FnOnce(&str) -> Option<T>,
        message: &str,
    ) -> Option<T> {
        let parsed = parse(value.as_deref()?);
        if parsed.is_none() {
            self.error(field, message);
        }
        parsed
    }

    /// Every problem found, unknown fields included; `Ok` with `value` when there is none.
    pub fn finish<T>(mut self, value: impl FnOnce() -> Option<T>) -> Result<T, FieldErrors> {
        let unknown: Vec<String> = self.object.keys().cloned().collect();
        for field in unknown {
            self.error(&field, UNKNOWN);
        }
        match value() {
            Some(value) if self.errors.is_empty() => Ok(value),
            _ => Err(self.errors),
        }
    }
}
