//! Macros shared by the configuration types and the adapters' streams.

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

/// What an adapter's stream tells of its opening handshake, read from its
/// connection (the field path given).
macro_rules! opening_getters {
    ($($conn:ident).+) => {
        /// The subprotocol the opening handshake agreed on ([`Connection::protocol`]).
        #[must_use]
        pub fn protocol(&self) -> Option<&str> {
            self.$($conn).+.protocol()
        }

        /// The path of the opening request ([`Connection::path`]).
        #[must_use]
        pub fn path(&self) -> Option<&str> {
            self.$($conn).+.path()
        }

        /// The query of the opening request ([`Connection::query`]).
        #[must_use]
        pub fn query(&self) -> Option<&str> {
            self.$($conn).+.query()
        }

        /// Takes the value the server's request callback handed on with
        /// [`AcceptOptions::data`](crate::handshake::AcceptOptions::data),
        /// if it is a `T` ([`Connection::take_data`]).
        pub fn take_data<T: std::any::Any>(&mut self) -> Option<T> {
            self.$($conn).+.take_data()
        }
    };
}
