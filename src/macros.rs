//! Macros shared by the configuration types.

/// By-value setters, one per public field, each documented as setting it.
macro_rules! by_value_setters {
    ($ty:ty { $($(#[$doc:meta])* $name:ident: $field:ty;)* }) => {
        impl $ty {
            $(
                $(#[$doc])*
                #[must_use = "setters return the changed value"]
                pub fn $name(mut self, value: $field) -> Self {
                    self.$name = value;
                    self
                }
            )*
        }
    };
}
