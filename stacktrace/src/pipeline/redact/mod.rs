//! What must not be stored: secret fields by name, secret values, credentials in text.

pub(crate) mod credentials;
pub(crate) mod fields;
pub(crate) mod remembered;
pub(crate) mod secrets;
pub(crate) mod shapes;
