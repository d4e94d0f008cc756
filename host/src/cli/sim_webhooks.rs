//! What the webhook servers of the shipped bundles do, for the simulator
//! (bundles/sim-webhooks.yaml): `meshup sim` and `meshup demo` give it to
//! `meshup-sim`, which itself knows no webhook server.

use meshup_sim::{BackendConfigError, WebhookBackends};

/// bundles/sim-webhooks.yaml, built in so that `meshup sim` behaves the same
/// from any directory.
const SHIPPED: &str = include_str!("../../../bundles/sim-webhooks.yaml");

/// The shipped webhook backends.
pub fn shipped() -> Result<WebhookBackends, BackendConfigError> {
    WebhookBackends::from_yaml(SHIPPED)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_shipped_backends_load() {
        let backends = super::shipped().expect("bundles/sim-webhooks.yaml is valid");
        assert!(!backends.is_empty());
    }
}
